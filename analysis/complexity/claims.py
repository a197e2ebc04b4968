"""The claims of §5 per task, declared before any data and judged by `lazyrich.evidence`.

`declare(config)` lists four claims per task from the options alone; `claims(summary, config)`
measures each one per run (a network × seed of the task: the unit of replication) and judges
it by the 90% Student-t interval over the runs. Never an interval over test points: the
per-run bootstrap over test points and the permutation tests stay in the summary as reported
numbers, not verdicts.

Margins, in each claim's units, fixed here from the claims' wording (never from a result):

- explained before T0, retention: ratios with theory 1 and margin 0.1 — the paper's "almost
  all" / "retained" read as at least 90% of the information (the bar this study declared
  before its first run);
- I(L;Y|F_final) ≈ 0: the per-run ratio I(L;Y|F_final) / I(L;Y) (Miller–Madow), theory 0,
  margin 0.05 — less than 5% of L's information about Y unexplained by F is negligible;
- T0 ≈ T_L: log2(T0 / T_L), theory 0, margin 1 — "about when" read as within a factor 2, on
  log-spaced records (their spacing is the claim's resolution).

Claim 1 is measured over every record before T0 with I(F_t;Y) > 0. Until 2026-11-30 it used only
the records the T0 test looked at (I(F_t;Y) ≥ t0_min_info·I(L;Y)); in every evidence run the
test rejected at the first of them, so that set was empty by construction and the claim could
never be decided. The change was made before the verdict under it was known.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lazyrich import evidence
from lazyrich.evidence import Claim

from .config import Config

PAPER = "Nakkiran et al. 2019 (arXiv 1905.11604)"
EXPLAINED_MARGIN = 0.1  # claims 1, 3: at least 90% of the information
NEGLIGIBLE = 0.05  # claim 4: under 5% of I(L;Y) left
FACTOR_LOG2 = 1.0  # claim 2: T0 / T_L within a factor 2


def networks_for(c: Config, task: str) -> list[str]:
    """The networks run on `task`: the CNN runs on every task but the 2-D ball."""
    return [n for n in c.networks if n != "cnn" or task != "ball"]


def _t0_rule(c: Config) -> str:
    return (
        f"T0 is the first record where the permutation test of I(F_t;Y|L) = 0 rejects at "
        f"family-wise level {c.alpha:g}, among the records above the floor I(F_t;Y) ≥ "
        f"{c.t0_min_info:g}·I(L;Y) (the floor as configured, not tuned)"
    )


def record_resolution(c: Config) -> float | None:
    """The spacing of the log-spaced records in log2 steps (None with fewer than two)."""
    return math.log2(c.steps) / (c.records - 1) if c.records >= 2 and c.steps >= 2 else None


def declare(c: Config) -> list[Claim]:
    """The study's claims for config `c`: four per task that runs at least one network.

    **Arguments:**

    - `c`: the study's options.

    **Returns:** a list of `lazyrich.evidence.Claim`, per task in `c.tasks`: explained before
    T0, T0 near T_L, retention, and I(L;Y|F_final) ≈ 0.
    """
    out: list[Claim] = []
    for task in c.tasks:
        nets = networks_for(c, task)
        if not nets:
            continue
        fig = f"figures/info_{task}_{nets[0]}.png"
        common: dict[str, Any] = dict(paper=PAPER, unit="run", figure=fig)
        out += [
            Claim(
                id=f"explained-before-T0-{task}",
                claim=f"{task}: before T0, L explains almost all of F_t's information "
                      "(μ ≈ I(F_t;Y))",
                theory=1.0, margin=EXPLAINED_MARGIN,
                reason="the paper's 'almost all': at least 90% of F_t's information explained "
                       f"by L; {_t0_rule(c)}",
                theory_text="Σμ / ΣI(F_t;Y) = 1", **common,
            ),
            Claim(
                id=f"T0-near-T_L-{task}",
                claim=f"{task}: the curves part (T0) about when F_t's test accuracy reaches L's "
                      "(T_L)",
                theory=0.0, margin=FACTOR_LOG2,
                reason=f"'about when' read as within a factor 2 (log2 ±1); {_t0_rule(c)}",
                resolution=record_resolution(c), theory_text="log2(T0 / T_L) = 0", **common,
            ),
            Claim(
                id=f"retention-{task}",
                claim=f"{task}: L is retained at (near) zero training error: F_final holds "
                      "what L knows about Y",
                theory=1.0, margin=EXPLAINED_MARGIN,
                reason="'retained' read as at least 90% of L's information about Y shared "
                       "with F_final (the same bar as before T0)",
                theory_text="μ_final / I(L;Y) = 1", **common,
            ),
            Claim(
                id=f"L-retained-test-{task}",
                claim=f"{task}: I(L;Y|F_final) ≈ 0: beyond F_final, L adds a negligible "
                      "fraction of its information about Y",
                theory=0.0, margin=NEGLIGIBLE,
                reason="practically negligible: under 5% of I(L;Y) left unexplained by F_final",
                theory_text="I(L;Y|F_final) / I(L;Y) = 0", **common,
            ),
        ]  # fmt: skip
    return out


def _runs(summary: dict, task: str) -> list[tuple[str, dict]]:
    return [(f"{net}/{seed}", s) for net, runs in summary.get(task, {}).items()
            for seed, s in runs.items()]  # fmt: skip


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _at_t0(runs: list[dict], c) -> str:
    """Where T0 sits: μ/I(F;Y) and I(F;Y)/I(L;Y) at T0 over the runs (ranges)."""
    at = [r for r in runs if r.get("mu_at_T0") is not None and r.get("I_FY_at_T0")]
    if not at:
        return ""
    ratio = [r["mu_at_T0"] / r["I_FY_at_T0"] for r in at]
    share = [r["I_FY_at_T0"] / r["I_LY"] for r in at if r.get("I_LY")]
    text = f"; at T0 μ/I(F;Y) is {min(ratio):.2f}–{max(ratio):.2f}"
    if share:
        text += (
            f" and I(F;Y)/I(L;Y) {min(share):.2f}–{max(share):.2f} (the test looks at records "
            f"with I(F;Y) ≥ {c.t0_min_info:g}·I(L;Y))"
        )
    return text


def per_unit(summary: dict, c: Config) -> dict[str, tuple[list[float], str | None]]:
    """Per claim id: one value per run of its task (network × seed, in run order) and a note.

    **Arguments:**

    - `summary`: `{task: {network: {seed: headline numbers}}}` as `run` builds it.
    - `c`: the study's options.

    **Returns:** `{id: (values, note)}`; a run where a value does not exist (no record before
    T0, T0 or T_L never reached, I(L;Y) = 0) gives NaN.
    """
    out: dict[str, tuple[list[float], str | None]] = {}
    for task in c.tasks:
        named = _runs(summary, task)
        runs = [s for _, s in named]
        counts = [r.get("records_before_T0") for r in runs]
        none = sum(r["mu_over_I_FY_before_T0"] is None for r in runs)
        out[f"explained-before-T0-{task}"] = (
            [_num(r["mu_over_I_FY_before_T0"]) for r in runs],
            f"per run: Σμ / ΣI(F_t;Y) over the records before T0 with I(F_t;Y) > 0; records "
            f"before T0 per run: {counts}; runs with none (not measured): {none} of {len(runs)}"
            + _at_t0(runs, c),
        )
        ratios = [r.get("T0_over_T_L") for r in runs]
        never_t0 = sum(r["T0"] is None for r in runs)
        never_tl = sum(r["T_L"] is None for r in runs)
        t = {n: (s["T0"], s["T_L"], s["records_before_T_L"]) for n, s in named}
        out[f"T0-near-T_L-{task}"] = (
            [math.log2(v) if v else math.nan for v in ratios],
            f"per run: log2(T0 / T_L); T0 never (after the last record: not measured) in "
            f"{never_t0}, T_L never in {never_tl} of {len(runs)} runs; (T0, T_L, records "
            f"before T_L) per network/seed: {t}",
        )
        zero = sum(r["zero_error_step"] is not None for r in runs)
        boot = [r.get("retention_boot") for r in runs]
        out[f"retention-{task}"] = (
            [_num(r["retention"]) for r in runs],
            f"per run: μ_final / I(L;Y) at the last record; {zero} of {len(runs)} runs reached "
            f"training error ≤ {c.stop_train_error:g}; final train accuracy "
            f"{[round(r['train_accuracy_final'], 4) for r in runs]}; per-run 5–95% over "
            f"test-point resamples (reported, not the interval): {_rounded(boot)}",
        )
        frac = [
            r["I_LY_given_F_final_mm"] / r["I_LY"] if r["I_LY"] > 1e-9 else math.nan for r in runs
        ]
        ps = [round(r["I_LY_given_F_final_p"], 4) for r in runs]
        mm = [round(r["I_LY_given_F_final_mm"], 5) for r in runs]
        out[f"L-retained-test-{task}"] = (
            frac,
            f"per run: Miller–Madow I(L;Y|F_final) / I(L;Y); I(L;Y|F_final) in bits {mm}; "
            f"permutation p-values (L shuffled within F-strata; reported, not the verdict) {ps}",
        )
    return out


def _rounded(pairs: list) -> list:
    return [None if p is None else [None if v is None else round(v, 3) for v in p] for p in pairs]


def claims(summary: dict, c: Config) -> list[dict[str, Any]]:
    """The claims table: `lazyrich.evidence.judge` of each declared claim on its runs.

    **Arguments:**

    - `summary`: `{task: {network: {seed: headline numbers}}}` as `run` builds it.
    - `c`: the study's options.

    **Returns:** one row per claim of `declare(c)`, in order (the claim's fields, `measured`,
    `samples`, `verdict`, `rule`, `note`).
    """
    values = per_unit(summary, c)
    rows = []
    for claim in declare(c):
        samples, note = values.get(claim.id, ([], "not measured by this run"))
        rows.append(evidence.judge(claim, np.asarray(samples, float).tolist(), note=note))
    return rows
