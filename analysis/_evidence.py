"""A study run's claims under the evidence protocol (`lazyrich.evidence`): plan, smoke, units.

A study's `run` returns `summary["claims"]`: rows from `lazyrich.evidence.judge`, one per
claim its `declare(config)` lists, each with its per-unit `samples`. Here, for every run:

- with a plan (`lazyrich run STUDY --plan PLAN`), each row is re-judged with the plan's claim
  (its theory, margin, estimator: the plan, committed before the run, is what decides); a
  planned claim that the run did not measure becomes an undecided "not measured" row;
- a quick preset is **smoke**: every verdict becomes `smoke`;
- the per-unit values go to `units.nc` (what `lazyrich verify` recomputes from) and leave the
  summary rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lazyrich import evidence
from lazyrich.errors import ConfigError

SMOKE_PRESETS = ("quick",)


def plan_run(plan_path: Path, study: str, options: list[str]) -> tuple[dict[str, Any], str]:
    """Read a plan for `study`; return it and its preset. Options come from the plan alone."""
    plan = evidence.read_plan(plan_path)
    if plan["study"] != study:
        raise ConfigError(f"{plan_path} is a plan for {plan['study']!r}, not {study!r}")
    if options:
        raise ConfigError(
            f"with --plan the study's options come from the plan ({' '.join(plan['options'])}); "
            f"drop {' '.join(options)} or write a new plan"
        )
    return plan, str(plan["preset"])


def config_seeds(config: Any) -> list[int] | None:
    """The seeds a study's config runs: its `seeds` list, or a count (`seeds` or `n_seeds`)
    from its first `seed` (`seed, …, seed + count − 1`); `None` if it names none."""
    count = getattr(config, "seeds", getattr(config, "n_seeds", None))
    if count is None:
        return None
    if not isinstance(count, int):
        return _as_list(count)
    start = int(getattr(config, "seed", 0))
    return list(range(start, start + count))


def check_seeds(plan: dict[str, Any], config: Any) -> None:
    """The config built from the plan's options runs the plan's seeds."""
    seeds = config_seeds(config)
    if seeds is not None and seeds != _as_list(plan["seeds"]):
        raise ConfigError(
            f"the plan names seeds {plan['seeds']} but its options give {seeds}: "
            "put the seeds in the plan's options"
        )


def _as_list(seeds: Any) -> list[int]:
    if isinstance(seeds, int):
        return list(range(seeds))
    return [int(s) for s in seeds]


def finish_claims(
    rows: list[dict[str, Any]], *, preset: str, plan: dict[str, Any] | None, folder: Path
) -> list[dict[str, Any]]:
    """Apply the plan and the smoke rule to a run's rows, write `units.nc`, strip samples."""
    if plan is not None:
        rows = _apply_plan(rows, plan["claims"])
    if preset in SMOKE_PRESETS:
        rows = [{**r, "verdict": "smoke"} for r in rows]
        for r in rows:
            r.pop("width_vs_margin", None)
    evidence.write_units(folder / evidence.UNITS_FILE, rows)
    return [{k: v for k, v in r.items() if k != "samples"} for r in rows]


def _apply_plan(rows: list[dict[str, Any]], claims: list[evidence.Claim]) -> list[dict[str, Any]]:
    by_id = {r["id"]: r for r in rows}
    out = []
    for claim in claims:
        row = by_id.pop(claim.id, None)
        samples = row.get("samples", []) if row else []
        note = row.get("note") if row else "not measured by this run"
        out.append(evidence.judge(claim, samples, note=note))
    for row in by_id.values():  # measured but not planned: shown, never a verdict
        out.append({**row, "verdict": "undecided", "note": "not in the plan: no verdict"})
    return out
