"""The lazy-limit study's claims, declared from the config alone (`declare`), judged per seed
(`judge_all`) by `lazyrich.evidence`'s one rule, and the seed sizing of its plan (`sizing`).

Per dataset, the unit is the seed (the whole study is repeated per seed: initialisation and
data). Each claim is followed by its control, a row of its own:

- **7. Gap to the empirical-NTK closed form ∝ γ.** Per seed, at the widest network, the
  log-log least-squares slope of the largest relative gap (over steps, train and test) against
  γ, over the γ ≤ 1 of the grid where that gap is below `SATURATION` = 0.1. Theory 1: the
  centred network f = (net − net₀)/γ differs from its linearisation by O(γ). The relative gap
  |measured − predicted|/predicted cannot exceed about 1 when the network drives its loss below
  the kernel's; under the simplest saturating form s = x/(1 + x) the local exponent is 1 − s,
  so points with s < 0.1 bias the slope by less than 0.1, a fifth of the margin (issue 25: the
  old fit included gaps of 0.987 and 0.9999). Margin 0.5: half the gap to the neighbouring
  orders of the expansion in γ, 0 (no γ dependence) and 2 (the first order cancelling).
- **7.lazy (control).** The same slope over γ ≤ `LAZY_MAX` = 1e-2 only (the deep lazy range
  of the committed 8-seed control, now a row of the main run): the exponent must not depend on
  where the fit stops.
- **8. Gap to the infinite-width closed form shrinks with width.** Per seed, at the smallest
  γ, the log-log slope of that gap against the width. Theory −1/2: the empirical NTK at
  initialisation fluctuates around the infinite-width one by O(1/√N), and a loss is first order
  in the kernel. Margin 0.25: half the gap to the neighbouring laws N⁰ (no width effect) and
  N⁻¹ (a second-order, |δK|² effect).
- **8.kernel (control).** Per seed, the log-log slope against the width of the cosine
  distance 1 − cos(K_emp, K_∞) of the NTKs at init. Theory −1: a cosine distance is second
  order in δK = O(N^(−1/2)). Margin 0.25: half the gap to the first-order law N^(−1/2). It
  tells a failure of claim 8 in the kernels (this row fails too) from one in how the loss
  inherits them (this row agrees).

A seed with fewer than two usable points has no slope (NaN); the interval (90%, Student t
over seeds) needs two seeds with a slope.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from lazyrich import evidence
from lazyrich.evidence import Claim

from .config import Config, gamma_grid
from .figures import max_gap

PAPER = "Atanasov et al. 2024 (arXiv 2410.04642), lazy limit; Jacot et al. 2018 (NTK)"
SATURATION = 0.1
LAZY_MAX = 1e-2
GAMMA_MARGIN = 0.5
WIDTH_MARGIN = 0.25
# Per-seed standard deviations of the slopes in the committed 8-seed control
# (docs/evidence/before-plans/lazy-limit/control-8-seeds: widths 64 … 1024,
# γ = 1e-3 … 1e-2, N = 1024).
CONTROL_SD = {"7": 0.268, "8": 0.378}


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def declare(c: Config) -> list[Claim]:
    """Claims 7, 7.lazy, 8 and 8.kernel for every dataset of `c`, in the order of the run's rows
    (config only)."""
    gammas = gamma_grid(c)
    widths = sorted(c.widths)
    ws = ", ".join(str(w) for w in widths)
    fig = "figures/theory_gap.png"
    gamma_reason = (
        "half the gap to the neighbouring orders of the expansion in γ: 0 (no γ "
        "dependence) and 2 (the first order cancelling)"
    )
    out = []
    for d in c.datasets:
        out.append(
            Claim(
                id=f"{d} 7",
                paper=PAPER,
                claim=f"gap between the centred network (N = {widths[-1]}) and its empirical-NTK "
                f"closed form grows ∝ γ (exponent over the γ ≤ 1 where the gap is below "
                f"{SATURATION}, not saturated)",
                theory=1.0,
                margin=GAMMA_MARGIN,
                reason=gamma_reason,
                figure=fig,
                theory_text="1",
            )
        )
        out.append(
            Claim(
                id=f"{d} 7.lazy",
                paper=PAPER,
                claim=f"control of 7: the same exponent fitted over γ ≤ {LAZY_MAX:g} only (the "
                "deep lazy range; gap below the same cut)",
                theory=1.0,
                margin=GAMMA_MARGIN,
                reason=gamma_reason,
                figure=fig,
                theory_text="1",
            )
        )
        out.append(
            Claim(
                id=f"{d} 8",
                paper=PAPER,
                claim=f"gap to the infinite-width closed form at γ = {gammas[0]:.3g} shrinks with "
                f"width ∝ N^(−1/2) (widths {ws})",
                theory=-0.5,
                margin=WIDTH_MARGIN,
                reason="half the gap 1/2 to the neighbouring laws N^0 (no width effect) and "
                "N^(−1) (a second-order, |δK|² effect)",
                figure=fig,
                theory_text="−1/2",
            )
        )
        out.append(
            Claim(
                id=f"{d} 8.kernel",
                paper=PAPER,
                claim="control of 8: the cosine distance between the empirical NTK at init and "
                f"the infinite-width NTK shrinks ∝ N^(−1) (widths {ws})",
                theory=-1.0,
                margin=WIDTH_MARGIN,
                reason="1 − cos is second order in δK = O(N^(−1/2)); half the gap 1/2 to the "
                "first-order law N^(−1/2)",
                figure=fig,
                theory_text="−1",
            )
        )
    return out


def gamma_slopes(gammas: np.ndarray, gap: np.ndarray, gamma_max: float = 1.0) -> tuple[float, int]:
    """Claim 7 for one seed: the slope of `gap` (per γ) over γ ≤ `gamma_max` with gap <
    SATURATION, and the number of γ it used."""
    use = (gammas <= gamma_max * (1 + 1e-9)) & np.isfinite(gap) & (gap < SATURATION)
    return _slope(gammas[use], gap[use]), int(use.sum())


def judge_all(c: Config, gammas: np.ndarray, per_seed: list[dict]) -> list[dict]:
    """The rows of `declare(c)` measured on `per_seed` (one `{dataset: run_case arrays}` per
    seed; claim 8.kernel reads `init_to_inf`, the init NTK's distance to the infinite one per
    width)."""
    order = np.argsort(c.widths)
    widths = np.asarray(c.widths)[order]
    rows = []
    for claim in declare(c):
        d, cid = claim.id.rsplit(" ", 1)
        if cid in ("7", "7.lazy"):
            top = 1.0 if cid == "7" else LAZY_MAX
            fits = [gamma_slopes(gammas, max_gap(r[d]["gap"])[order[-1]], top) for r in per_seed]
            slopes = [s for s, _ in fits]
            note = (
                f"per-seed slopes: {_fmt(slopes)}; γ used per seed (≤ {top:g}, gap < "
                f"{SATURATION}): " + ", ".join(str(n) for _, n in fits)
            )
        elif cid == "8":
            slopes = [_slope(widths, max_gap(r[d]["gap_infinite"])[order, 0]) for r in per_seed]
            note = f"per-seed slopes: {_fmt(slopes)}"
        else:
            slopes = [_slope(widths, np.asarray(r[d]["init_to_inf"])[order]) for r in per_seed]
            note = f"per-seed slopes: {_fmt(slopes)}"
        rows.append(evidence.judge(claim, slopes, note=note))
    return rows


def _width(sd: float, n: int) -> float:
    return 2 * float(stats.t.ppf(0.95, n - 1)) * sd / math.sqrt(n)


def sizing(c: Config) -> tuple[dict[str, str], str | None]:
    """The plan's seed sizing: per claim, the expected 90% t-interval width against 2 × margin
    (from the committed 8-seed control's per-seed spread), and notes on the preset.

    **Arguments:**

    - `c`: the configuration the plan runs.

    **Returns:** `(claim id → sentence, notes)`.
    """
    if c.activation != "relu":
        return _smooth_sizing(c)
    n = c.seeds
    out: dict[str, str] = {}
    for claim in declare(c):
        cid = claim.id.rsplit(" ", 1)[1]
        law = "2·t(0.95, n−1)·sd/√n"
        if cid in ("7", "7.lazy"):
            sd = CONTROL_SD["7"]
            src = "per-seed sd 0.268 of the γ slope in the committed 8-seed control (γ ≤ 1e-2)"
        elif cid == "8":
            sd = CONTROL_SD["8"]
            src = "per-seed sd 0.378 of the width slope in the committed 8-seed control"
        else:
            sd = None
            src = (
                "no committed spread (new row); seed 0 of the committed runs gives 1 − cos = "
                "0.054, 0.026, 0.015, 0.0079, 0.0037 for N = 64 … 1024 (slope ≈ −0.94); a "
                "cosine distance averages over all kernel entries, so its per-seed sd is "
                "expected well below claim 8's (≤ 0.1)"
            )
        if n < 2:
            out[claim.id] = f"{src} → no interval with {n} seed"
            continue
        w = _width(sd if sd is not None else 0.1, n)
        bound = "≤ " if sd is None else ""
        out[claim.id] = (
            f"{src} → expected 90% t-width {law} = {bound}{w:.2f} with {n} seeds, "
            f"against 2 × margin = {2 * claim.margin:.2f}"
        )
    notes = (
        f"Preset: datasets {', '.join(c.datasets)}, widths {', '.join(map(str, c.widths))}, "
        f"depth L = {c.depth}, γ = {c.gamma_min:g} … {c.gamma_max:g} at {c.gamma_per_decade:g} "
        f"per decade ({gamma_grid(c).size} γ), {c.steps} full-batch GD steps, seeds {c.seed} … "
        f"{c.seed + n - 1}. What changed from the old evidence (3 seeds, widths 64 … 512, γ ≤ 1 at "
        "2 per decade): claim 7 is fitted per seed only where the relative gap is below 0.1 "
        "(the old fit included the saturated gaps 0.987 and 0.9999 at γ ≥ 0.3, so the grid now "
        "stops at γ = 0.1, the onset of saturation, and is twice as fine); claim 8 runs widths "
        "to 1024 and 12 seeds, which the committed 8-seed control's spread needs for an "
        "interval narrower than 2 × 0.25; the control runs (γ ≤ 1e-2; the kernel's own width "
        "law) are rows 7.lazy and 8.kernel of this run; the summary keeps every seed "
        "(per_seed), results.nc the per-seed maximal gaps. Wall time on 2 quiet cores: the "
        "committed control (5 widths to 1024, 3 γ, 8 seeds) took 274 s, 34 s per seed, and the "
        "old evidence (4 widths to 512, 7 γ, 3 seeds) 91 s, 30 s per seed; per seed cost ≈ a + "
        "b·(number of γ) with a 1-seed run of 13 γ at widths to 1024 on this loaded machine "
        "taking 197 s of CPU (≈ 120 s on 2 quiet cores) gives b ≈ 8.6 s, a ≈ 8 s, so 9 γ cost "
        "≈ 86 s per seed and 12 seeds ≈ 17 min (≤ 25 min with 40% slack). The relative gap "
        "of ReLU networks may have a small γ-independent part at the smallest γ (the tiny-γ "
        "oracle test allows 1% for ReLU against 0.1% for erf); that would flatten the slope "
        "and is what 7.lazy against 7 would show."
    )
    return out, notes


def _fmt(v) -> str:
    return ", ".join("—" if not np.isfinite(x) else f"{x:.3g}" for x in v)


# Per-seed standard deviations of the slopes in the first preregistered run (plan 8cb003b,
# ReLU, 12 seeds, docs/evidence/lazy-limit/units.nc).
FIRST_RUN_SD = {"7": 0.305, "7.lazy": 0.446, "8": 0.381, "8.kernel": 0.030}


def _smooth_sizing(c: Config) -> tuple[dict[str, str], str]:
    """The sizing of a plan with a smooth activation (the second plan: the first, with ReLU,
    found a γ-independent floor in the gap at γ ≤ 1e-2)."""
    n = c.seeds
    out: dict[str, str] = {}
    for claim in declare(c):
        cid = claim.id.rsplit(" ", 1)[1]
        sd = FIRST_RUN_SD[cid]
        out[claim.id] = (
            f"per-seed sd {sd:.3g} of this row's slope in the first preregistered run (ReLU, 12 "
            f"seeds{'; inflated there by the ReLU floor' if cid == '7.lazy' else ''}) → "
            f"expected 90% t-width 2·t(0.95, n−1)·sd/√n = {_width(sd, n):.2f} with {n} seeds, "
            f"against 2 × margin = {2 * claim.margin:.2f}"
        )
    notes = (
        f"Second plan: activation {c.activation} instead of ReLU; otherwise the first plan's "
        f"preset (datasets {', '.join(c.datasets)}, widths {', '.join(map(str, c.widths))}, "
        f"depth L = {c.depth}, γ = {c.gamma_min:g} … {c.gamma_max:g} at {c.gamma_per_decade:g} "
        f"per decade ({gamma_grid(c).size} γ), {c.steps} full-batch GD steps, seeds {c.seed} … "
        f"{c.seed + n - 1}). Why: the first preregistered run (plan 8cb003b, ReLU) found the gap "
        "to the empirical-NTK theory flat at 3e-3 – 1e-2 for γ ≤ 1e-2 (row 7.lazy undecided, "
        "0.57 [0.34, 0.80]). A pilot after that run (seed 0, N = 64, every γ in float64, γ = "
        "1e-4 … 1e-2 at 2 per decade) found the cause: the floor is ReLU's. ReLU gaps 0.0013, "
        "0.0029, 0.0062, 0.0064, 0.011 (slope 0.44); erf gaps on the same seed 0.00022, "
        "0.00072, 0.0024, 0.0089, 0.041 (slope 1.12). At step 1 the ReLU gap is exactly ∝ γ "
        "too; later, activation-pattern flips (a preactivation crossing the kink) add, for "
        "each unit that flips, a deviation first order in its parameter change rather than "
        "second, so at finite width the ReLU gap does not shrink like γ. The expansion "
        "behind claim 7 (f = linearisation + O(γ)) assumes a smooth activation, so this plan "
        "tests it with one; claims 8 and 8.kernel are rerun with erf as they come. Wall time: "
        "the first run took 1095 s of CPU; erf costs about what ReLU does (pilot: 28 s each), "
        "so about 13 min on 2 quiet cores."
    )
    return out, notes
