"""The four claims of §5 per task (networks and seeds pooled), with rules fixed before any run.

Claim 1 is measured over every record before T0 with I(F_t;Y) > 0. Until 2026-11-30 it used only
the records the T0 test looked at (I(F_t;Y) ≥ t0_min_info·I(L;Y)); in every evidence run the
test rejected at the first of them, so that set was empty by construction and the claim could
never be decided. The change was made before the verdict under it was known.

Intervals: claims 1 and 3 — the 5–95% bootstrap interval (test points resampled, each run
independently) of the mean over the task's runs; claim 2 — the range of T0/T_L over runs;
claim 4 — the range of the Miller–Madow I(L;Y|F_final) over runs, decided by the runs'
permutation tests.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

PAPER = "Nakkiran et al. 2019 (arXiv 1905.11604)"
EXPLAINED = 0.9  # claims 1, 3
CLOSE = (0.5, 2.0)  # claim 2: T0 / T_L within a factor 2


def _runs(summary: dict, task: str) -> list[tuple[str, dict]]:
    return [(f"{net}/{seed}", s) for net, runs in summary.get(task, {}).items()
            for seed, s in runs.items()]  # fmt: skip


def _boot_mean(runs: list[dict], point: str, boot: str) -> dict[str, Any]:
    vals = [r[point] for r in runs if r[point] is not None]
    reps = np.array([r["_boot"][boot] for r in runs if r[point] is not None])
    if not vals:
        return {"value": None, "lo": None, "hi": None}
    mean = np.nanmean(reps, axis=0)
    mean = mean[np.isfinite(mean)]
    value = float(np.mean(vals))
    lo, hi = (float(np.percentile(mean, q)) for q in (5, 95)) if mean.size else (None, None)
    if lo is not None and hi is not None:
        lo, hi = min(lo, value), max(hi, value)
    return {"value": value, "lo": lo, "hi": hi}


def _at_least(m: dict, bound: float) -> str:
    if m["lo"] is None:
        return "undecided"
    return "agrees" if m["lo"] >= bound else "disagrees" if m["hi"] < bound else "undecided"


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


def claims(summary: dict, c) -> list[dict[str, Any]]:
    """Claims per task in `c.tasks` (each task's networks and seeds pooled)."""
    out: list[dict[str, Any]] = []
    for task in c.tasks:
        named = _runs(summary, task)
        runs = [s for _, s in named]
        if not runs:
            continue
        fig = f"figures/info_{task}_{named[0][0].split('/')[0]}.png"
        m = _boot_mean(runs, "mu_over_I_FY_before_T0", "ratio")
        none = sum(r["mu_over_I_FY_before_T0"] is None for r in runs)
        counts = [r.get("records_before_T0") for r in runs]
        out.append(dict(
            id=f"explained-before-T0-{task}", paper=PAPER,
            claim=f"{task}: before T0, L explains F_t's information (μ ≈ I(F_t;Y))",
            theory=f"Σμ / ΣI(F_t;Y) over the records before T0 ≥ {EXPLAINED}", measured=m,
            verdict=_at_least(m, EXPLAINED),
            rule=f"per run Σμ / ΣI(F_t;Y) over every record before T0 with I(F_t;Y) > 0 "
                 f"(tested or not), mean over runs, 90% bootstrap interval over test points; "
                 f"agrees if lo ≥ {EXPLAINED}, disagrees if hi < {EXPLAINED}",
            figure=fig,
            note=f"records before T0 per run: {counts}; runs with none: {none} of {len(runs)}"
                 + _at_t0(runs, c)))  # fmt: skip
        ratios = [r["T0_over_T_L"] if r["T0"] is not None else math.inf
                  for r in runs if r["T_L"] is not None]  # fmt: skip
        finite = [v for v in ratios if math.isfinite(v)]
        if finite:
            m2 = {"value": float(np.exp(np.mean(np.log(finite)))), "lo": float(min(ratios)),
                  "hi": float(max(ratios))}  # fmt: skip
            lo, hi = CLOSE
            inside, outside = lo <= m2["lo"] and m2["hi"] <= hi, m2["hi"] < lo or m2["lo"] > hi
            verdict = "agrees" if inside else "disagrees" if outside else "undecided"
        else:
            m2, verdict = {"value": None, "lo": None, "hi": None}, "undecided"
        t = {n: (s["T0"], s["T_L"], s["records_before_T_L"]) for n, s in named}
        out.append(dict(
            id=f"T0-near-T_L-{task}", paper=PAPER,
            claim=f"{task}: the curves part (T0) about when F_t's accuracy reaches L's (T_L)",
            theory=f"T0 / T_L in [{CLOSE[0]:g}, {CLOSE[1]:g}]", measured=m2, verdict=verdict,
            rule=f"value: geometric mean of T0/T_L over runs (T0 never: ∞), interval: their "
                 f"range; agrees if the range is inside [{CLOSE[0]:g}, {CLOSE[1]:g}], disagrees "
                 "if entirely outside",
            figure=fig, note=f"(T0, T_L, records before T_L) per network/seed: {t}"))  # fmt: skip
        m3 = _boot_mean(runs, "retention", "retention")
        zero = sum(r["zero_error_step"] is not None for r in runs)
        out.append(dict(
            id=f"retention-{task}", paper=PAPER,
            claim=f"{task}: L is retained at (near) zero training error",
            theory=f"μ_final / I(L;Y) ≥ {EXPLAINED}", measured=m3,
            verdict=_at_least(m3, EXPLAINED),
            rule=f"mean over runs at the last record, 90% bootstrap interval; agrees if lo ≥ "
                 f"{EXPLAINED}, disagrees if hi < {EXPLAINED}",
            figure=fig,
            note=f"{zero} of {len(runs)} runs reached training error ≤ {c.stop_train_error}; "
                 f"final train accuracy "
                 f"{[round(r['train_accuracy_final'], 4) for r in runs]}"))  # fmt: skip
        ps = [r["I_LY_given_F_final_p"] for r in runs]
        vals = [r["I_LY_given_F_final_mm"] for r in runs]
        level = c.alpha / len(runs)
        rejected = sum(p <= level for p in ps)
        verdict = "agrees" if rejected == 0 else "disagrees" if rejected == len(runs) else (
            "undecided")  # fmt: skip
        out.append(dict(
            id=f"L-retained-test-{task}", paper=PAPER,
            claim=f"{task}: I(L;Y|F_final) ≈ 0",
            theory="I(L;Y|F_final) = 0 (permutation test does not reject)",
            measured={"value": float(np.mean(vals)), "lo": float(min(vals)),
                      "hi": float(max(vals))},
            verdict=verdict,
            rule=f"Miller–Madow I(L;Y|F_final), L shuffled within F-strata, per run at level "
                 f"{c.alpha}/{len(runs)} (Bonferroni over runs); agrees if no run rejects, "
                 "disagrees if every run rejects; interval: range over runs (bits)",
            figure=fig,
            note=f"{rejected} of {len(runs)} runs reject; p-values "
                 f"{[round(p, 4) for p in ps]}"))  # fmt: skip
    return out
