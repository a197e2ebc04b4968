"""The active-params study's seed sizing for a plan (`lazyrich plan active-params`): per claim,
the expected 90% interval width against 2 × margin, and the notes on what the preset runs.

The spreads come from the committed evidence (`docs/evidence/before-plans/active-params`:
MNIST and mnist1d 4,000/2,000, MLPs 64/256/1024, 8 epochs, 3 seeds, 5 timing repeats under
load 11–13). Its claim rows kept only the smallest and largest of the 3 per-seed values (the
old rule was "every seed above"), so the per-seed sd is estimated from that range: the
expected range of 3 normal draws is 1.693 sd. Its timing repeats kept the range of 5 ratios
(expected range 2.326 sd). Claims that run did not measure say so and take the closest
measured spread. The spreads size seeds only; no margin is set from them.
"""

from __future__ import annotations

import math

from scipy import stats

from .claims import ACCURACY_MARGIN, NULL_MARGIN, RATIO_MARGIN, SHARE_MARGIN, SPEEDUP, declare
from .config import Config

D3, D5 = 1.693, 2.326  # expected range of 3 and of 5 standard normal draws
SOURCE = "the committed evidence"
# (smallest, largest, mean) of the per-seed values in the committed evidence's rows (3 seeds).
OLD_RANGE: dict[str, tuple[float, float, float]] = {
    "few-parameters-carry-the-change": (0.6744, 0.6842, 0.6779),
    "reset-active-hurts-most-relative": (0.0014, 0.0113, 0.0069),
    "reset-active-hurts-most-absolute": (0.1255, 0.1561, 0.1434),
    "reset-active-hurts-most-layer": (0.1210, 0.1400, 0.1280),
    "bottom-layers-wider-relative": (0.6380, 0.6494, 0.6447),
    "bottom-layers-wider-absolute": (1.9709, 2.1556, 2.0510),
    "bottom-layers-wider-layer": (0.4815, 0.5701, 0.5207),
    "top-bottom-lws-close-to-sgd": (0.0372, 0.0585, 0.0487),
}
# (smallest, largest) of the 5 interleaved timing repeats' SGD / PLWS ratio (p = 0.1, 0.25),
# whole trainings under load 11–13: an upper bound on a quiet machine's per-repeat spread.
OLD_TIMING_RANGE = {0.1: (0.8237, 2.1583), 0.25: (0.7140, 1.6902)}


def t_width(sd: float, n: int) -> float:
    """Expected width of a 90% Student-t interval over `n` units of spread `sd`."""
    return 2 * float(stats.t.ppf(0.95, n - 1)) * sd / math.sqrt(n)


def _line(sd: float, how: str, n: int, unit: str, margin: float, extra: str = "") -> str:
    w = t_width(sd, n)
    text = (
        f"per-{unit} sd {sd:.3g} ({how}) → expected 90% t-width 2·t(0.95,{n - 1})·sd/√{n} = "
        f"{w:.3g} with {n} {unit}s, against 2 × margin = {2 * margin:.3g}"
    )
    return text + (f"; {extra}" if extra else "")


def _range_sd(lo_hi: tuple[float, ...], d: float) -> float:
    return (lo_hi[1] - lo_hi[0]) / d


def _boundary(claim, mean: float, sd: float, n: int) -> str:
    """The committed mean's distance to the nearest edge of the claim's region, in expected
    half-widths (> 1: decided either way; < 1: undecided unless the mean moves)."""
    lo, hi = claim.region
    edge = min((e for e in (lo, hi) if math.isfinite(e)), key=lambda e: abs(mean - e))
    half = t_width(sd, n) / 2
    return (
        f"the committed mean {mean:.3g} is {abs(mean - edge) / half:.1f} expected half-widths "
        f"from the region's edge {edge:.3g} (more than 1: decided either way)"
    )


def sizing(c: Config) -> tuple[dict[str, str], str | None]:
    """Per claim, the expected interval width against 2 × margin; and the plan's notes.

    **Arguments:**

    - `c`: the study's config (`n_seeds` and `timing_repeats` give the units).

    **Returns:** `({claim id: sentence}, notes)` for every claim `declare(c)` lists.
    """
    ns, nr = c.n_seeds, c.timing_repeats
    claims = {d.id: d for d in declare(c)}
    ids = list(claims)
    out: dict[str, str] = {}
    old3 = f"range of 3 seeds in {SOURCE} / {D3}"
    margins = {"few-parameters-carry-the-change": SHARE_MARGIN}
    for cid in ids:
        if cid in OLD_RANGE:
            sd = _range_sd(OLD_RANGE[cid], D3)
            m = margins.get(cid, RATIO_MARGIN if cid.startswith("bottom") else ACCURACY_MARGIN)
            extra = _boundary(claims[cid], OLD_RANGE[cid][2], sd, ns)
            if cid == "reset-active-hurts-most-relative":
                extra += "; " + (
                    "the claim stays undecided unless the mean moves (now the max over drawn "
                    "controls, no longer NaN where a matched control cannot be drawn); a 0.003 "
                    f"half-width needs about {_seeds_for(sd, 0.003)} seeds, beyond this budget"
                )
            out[cid] = _line(sd, old3, ns, "seed", m, extra)
        elif cid.startswith("reset-active-vs-"):
            sc = cid.rsplit("-", 1)[1]
            sd = _range_sd(OLD_RANGE[f"reset-active-hurts-most-{sc}"], D3)
            out[cid] = _line(sd, f"new control row; no committed spread: that of "
                             f"reset-active-hurts-most-{sc}, {old3}", ns, "seed",
                             ACCURACY_MARGIN)  # fmt: skip
        elif cid.startswith("bottom-layers-"):
            sc = cid.rsplit("-", 1)[1]
            sd = _range_sd(OLD_RANGE[f"bottom-layers-wider-{sc}"], D3)
            out[cid] = _line(sd, "no committed per-seed row (the old row merged it into the "
                             f"growth claim): that of bottom-layers-wider-{sc}", ns, "seed",
                             RATIO_MARGIN)  # fmt: skip
        elif cid in ("top-lws-below-sgd",) or cid.startswith(("plws-close", "plws-equal")):
            sd = _range_sd(OLD_RANGE["top-bottom-lws-close-to-sgd"], D3)
            out[cid] = _line(sd, "no committed per-seed row: that of the top + bottom LWS gap, "
                             f"{old3}", ns, "seed", ACCURACY_MARGIN)  # fmt: skip
        elif cid.startswith("plws-cheaper-p"):
            p = float(cid.removeprefix("plws-cheaper-p"))
            rng = OLD_TIMING_RANGE.get(p, OLD_TIMING_RANGE[0.1])
            sd = _range_sd(rng, D5)
            lo, hi = SPEEDUP
            out[cid] = _line(sd, f"range of 5 whole-training ratios under load 11–13 in {SOURCE} "
                             f"/ {D5}, an upper bound for a quiet machine", nr, "repeat",
                             (hi - lo) / 2)  # fmt: skip
        elif cid == "top-lws-fast":
            sd = _range_sd(OLD_TIMING_RANGE[0.1], D5)
            out[cid] = _line(sd, "new row; no committed spread: that of the p = 0.1 PLWS ratio "
                             f"under load, / {D5}", nr, "repeat", SPEEDUP[0] - 1.0,
                             "an 'above 2' claim decides once the interval clears 2")  # fmt: skip
        elif cid == "timing-null-sgd-vs-sgd":
            how = (
                "new control; no committed spread: 5% assumed for two identical timed "
                "trainings on a quiet machine (under load 11–13 the committed ratios spread "
                "~0.5: this control would then say the timings cannot resolve 10%)"
            )
            out[cid] = _line(0.05, how, nr, "repeat", NULL_MARGIN)
    return out, _notes(c)


def _seeds_for(sd: float, half: float) -> int:
    """Seeds whose expected 90% t half-width is at most `half` for spread `sd`."""
    n = 3
    while t_width(sd, n) / 2 > half and n < 1000:
        n += 1
    return n


def _notes(c: Config) -> str:
    return (
        f"The evidence preset: MNIST (first 4,000 training, 2,000 test images; --data-dir or "
        f"LAZYRICH_DATA must point at the MNIST files) and mnist1d (4,000/2,000); MLPs of width "
        f"64/256/1024 (depth 3, He, no biases), plain SGD lr 0.1, batch 32, 8 epochs (1,000 "
        f"steps); {c.n_seeds} seeds ({c.seed}–{c.seed + c.n_seeds - 1}: initialisation, batch "
        f"order, PLWS coins); reset k = 1% and 5%; static LWS top and top + bottom, PLWS p = "
        f"{', '.join(f'{p:g}' for p in c.plws_p)} on mlp-256. Timing first, per dataset: "
        f"{c.timing_repeats} interleaved repeats of SGD, top-only LWS (p = 0, truncated backward "
        f"pass), PLWS at each p and SGD again, {c.timing_epochs} epochs each, one run per "
        "engine call. Guards against a shared machine's noise: the step cost is a per-step "
        "time (compiled training steps only, after a warm-up call), SGD's in each repeat is the "
        "mean of two timings bracketing the others (drift inside a repeat cancels to first "
        "order), the equal-wall-time budget uses medians over the repeats (one slow repeat does "
        "not set it), every ratio is taken within a repeat, and the null row (first / last SGD "
        "of a repeat, 1 ± 0.1) states whether the timings resolve 10% at all; run it on a quiet "
        "machine. PLWS at equal wall time trains SGD's 1,000 steps × median SGD step / median "
        "PLWS step, in the same engine call as PLWS at equal steps (one more record). "
        "Changes from the committed evidence: 3 → "
        f"{c.n_seeds} seeds with Student-t 90% intervals over seeds (was min–max of 3); the "
        "reset claims take, per (network, k), the largest drop among the controls that can be "
        "drawn (was NaN → undecided) and each control is its own row; top-only LWS and the null "
        "timing are rows; per-step timing on both datasets (was whole trainings, MNIST only); "
        "left out as deciding no claim: LWS bottom-only and all-layers (all-layers is SGD step "
        "for step, checked by the tests), k = 0.1% and 10% (never run by the evidence). "
        + _wall_time(c)
    )


# A measured piece: this preset with 1 seed (--seed 100 --n-seeds 1, not an evidence seed),
# commit d8febf7, on the shared 2-core machine under load 11–13: 945 s wall, 273 s CPU (user +
# system); of the progress bar's 870 s, timing took 220 s (both datasets) and the seed's
# trainings and measures 650 s (first-call compilation included).
PIECE_CPU, PIECE_BAR, PIECE_TIMING = 273.0, 870.0, 220.0
# Quiet-machine calibration: the quick preset took 175 s CPU under load and 108 s wall in the
# demo (2 cores): wall ≈ 0.62 × CPU on 2 quiet cores (JAX runs the large matmuls on both).
QUIET = 0.62


def _wall_time(c: Config) -> str:
    """The wall-time arithmetic (the measured piece, scaled to the preset's seeds)."""
    bar_cpu = PIECE_CPU * PIECE_BAR / 945.0
    fixed = PIECE_CPU - bar_cpu + bar_cpu * PIECE_TIMING / PIECE_BAR  # start-up, figures, timing
    per_seed = bar_cpu * (PIECE_BAR - PIECE_TIMING) / PIECE_BAR
    upper = fixed + c.n_seeds * per_seed
    return (
        f"Wall time: a 1-seed piece of this preset (seed 100) took 945 s wall and {PIECE_CPU:.0f} "
        f"s CPU under load 11–13; apportioned by the progress bar, {fixed:.0f} CPU-s are fixed "
        f"(start-up, figures, the timing repeats) and {per_seed:.0f} CPU-s per seed (first-call "
        f"compilation included, so later seeds cost less). {c.n_seeds} seeds: {fixed:.0f} + "
        f"{c.n_seeds} × {per_seed:.0f} = {upper:.0f} CPU-s, an upper bound for the wall time on "
        f"2 quiet cores ({upper / 60:.1f} min, one core busy); with the quick preset's "
        f"calibration (wall ≈ {QUIET} × CPU on 2 quiet cores) about {QUIET * upper / 60:.0f} min "
        f"expected. The committed evidence took 19.7 min for 3 seeds under load 11–13; this "
        f"piece, under the same load, 15.8 min for 1 seed: the machine was busier per unit of "
        f"load, so CPU time, not wall time under load, is the scale used here."
    )
