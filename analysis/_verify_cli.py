"""`lazyrich plan` (write a study's plan before its run) and `lazyrich verify` (re-derive every
claim from the committed results)."""

from __future__ import annotations

import shlex
from pathlib import Path

from lazyrich import evidence
from lazyrich.errors import ConfigError

from ._evidence import config_seeds
from .studies import get_preset, get_study

PLAN_USAGE = """usage: lazyrich plan STUDY [--preset evidence] [--out DIR] [study options]

Write DIR/STUDY/plan.json (default DIR: docs/evidence): the study's claims as its code declares
them for this configuration (theory, margin and its reason, estimator, unit), the preset, the
options and seeds, the command that runs it, and the study's seed sizing ("sizing": per claim,
the expected interval width against 2 x margin, from the committed evidence's per-seed spread).
Commit the plan alone, then run the command it names.
"""

VERIFY_USAGE = """usage: lazyrich verify [DIR]

Recompute every claim under DIR (default docs/evidence) from the committed per-unit values
(units.nc) and plan.json: interval, verdict, the plan's hash, and whether the plan was committed
before the run. Prints one line per mismatch and exits 1 if there is any; a study folder
without a plan is listed as not preregistered.
"""


def plan_command(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(PLAN_USAGE)
        return 0
    import tyro

    name, rest = args[0], list(args[1:])
    study = get_study(name)
    preset = "evidence"
    out = Path("docs/evidence")
    for flag in ("--preset", "--out"):
        if flag in rest:
            i = rest.index(flag)
            if i + 1 >= len(rest):
                raise ConfigError(f"{flag} needs a value")
            value = rest.pop(i + 1)
            rest.pop(i)
            preset, out = (value, out) if flag == "--preset" else (preset, Path(value))
    path = out / name / "plan.json"
    if path.exists():
        raise ConfigError(
            f"{path} exists: a changed plan is a new plan; write it to another --out "
            "(e.g. docs/evidence/STUDY/rerun-2) and keep both"
        )
    default = get_preset(study, preset)
    config = tyro.cli(type(default), args=rest, default=default, prog=f"lazyrich plan {name}")
    study.validate(config)
    seeds = config_seeds(config) or [0]
    claims = study.declare(config)
    # A study may state, per claim, the expected interval width against 2 × margin (from the
    # committed evidence's per-seed spread) and notes for a referee: `sizing(config)`.
    sizing, notes = study.sizing(config) if hasattr(study, "sizing") else ({}, None)
    unknown = set(sizing) - {c.id for c in claims}
    if unknown:
        raise ConfigError(f"{name}: sizing names undeclared claims {', '.join(sorted(unknown))}")
    command = f"uv run lazyrich run {name} --plan {path} --out {out}"
    evidence.write_plan(
        path,
        study=name,
        preset=preset,
        options=rest,
        seeds=seeds,
        command=command,
        claims=claims,
        sizing=sizing,
        notes=notes,
    )
    print(f"plan: {path} ({len(claims)} claims); commit it alone, then run:")
    print(f"  {shlex.join(command.split())}")
    return 0


def verify_command(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(VERIFY_USAGE)
        return 0
    if len(args) > 1:
        raise ConfigError(f"verify takes one directory, got {' '.join(args)}")
    root = Path(args[0] if args else "docs/evidence")
    checks = evidence.verify(root)
    bad = 0
    for c in checks:
        for line in c.mismatches:
            print(f"MISMATCH {line}")
        bad += len(c.mismatches)
        if not c.mismatches:
            state = "preregistered" if c.preregistered else f"not preregistered ({c.why_not})"
            verified = "every claim re-derived" if c.preregistered else "nothing to re-derive"
            print(f"{c.study}: {c.claims} claims, {state}: {verified}")
    print(f"verify: {len(checks)} studies, {bad} mismatches")
    return 1 if bad else 0
