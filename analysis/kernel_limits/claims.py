"""The kernel-limits study's claims, declared from the config alone (`declare`) and measured
per seed (`judge_all`) under `lazyrich.evidence`'s one rule.

The unit is the seed: each seed draws its own data and initialisations, so every quantity
below (network, DMFT and NTK alike) is one number per seed. Per dataset:

- **width-exponent** (the network approaches the DMFT): the per-seed log-log slope of
  D(N) = mean over the recorded steps of (|ΔL_train| + |ΔL_test|)/2 between the network and
  the DMFT, against N, at γ = `gamma_width`. Theory −1/2: at fixed γ a width-N network's
  kernels and outputs fluctuate around their DMFT limit by O(1/√N) (Bordelon & Pehlevan
  2022/2023, arXiv 2205.09653 and 2304.03408: the leading finite-width correction is a
  Gaussian fluctuation of variance O(1/N); the mean's bias is O(1/N) and only the average
  over many seeds sees it). One seed's |ΔL| is dominated by its fluctuation. Margin 0.25: half
  the gap to the neighbouring laws N⁰ (no convergence) and N⁻¹ (the mean's bias alone).
- **width-2x** (the issue's oracle 3): log₂(D(N_min)/D(N_max)) per seed above 1 (at least 2×
  smaller). A bound, no band.
- **parting-gamma** (the DMFT departs from the NTK as γ grows): per seed, log₁₀ of the
  smallest γ of the grid where max over steps of |L_test,DMFT − L_test,NTK| exceeds
  `PART` = 5% of the initial test loss (NaN if none). Theory: features move at c = η0/γ per
  step against the function's η0/γ², a ratio γ, so by γ = 1 the kernels have moved by O(1) and
  the losses have parted: log₁₀ γ_part below 0. A bound; the interval is widened by the grid's
  spacing.
- **not-ntk** (oracle 4): at γ = `gamma_width`, log₁₀ of D(DMFT, NTK) / D(network at N_max,
  DMFT) per seed above 0: the theory is farther from the NTK than the widest network is from
  the theory. A bound.
- **alignment** (features align with the task): the widest network's final-NTK kernel-target
  alignment at the largest γ minus that at the smallest γ, per seed, above 0 by more than the
  margin 1/√N_max: the size of the initial NTK's finite-width fluctuations, a movement that is
  practically none (at γ → 0 the kernel does not move at all).
"""

from __future__ import annotations

import math

import numpy as np

from lazyrich import evidence
from lazyrich.evidence import Claim

from .config import Config, gamma_index

PAPER = (
    "Bordelon & Pehlevan 2022 (arXiv 2205.09653), DMFT of feature learning; "
    "Bordelon & Pehlevan 2023 (arXiv 2304.03408), finite-width fluctuations"
)
PART = 0.05  # the parting threshold, a fraction of the initial test loss
WIDTH_MARGIN = 0.25
FIGURE = "figures/loss_curves.png"


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over the recorded steps after step 0 of |a − b| (last axis)."""
    return np.mean(np.abs(a[..., 1:] - b[..., 1:]), axis=-1)


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def _spacing(gammas) -> float:
    return float(np.median(np.diff(np.log10(np.asarray(gammas, float)))))


def declare(c: Config) -> list[Claim]:
    """The claims for every dataset of `c`, in the order of the run's rows (config only)."""
    widths = sorted(c.widths)
    lo, hi = widths[0], widths[-1]
    g = f"γ = {c.gamma_width:.3g}"
    out = []
    for d in c.datasets:
        out += [
            Claim(
                id=f"{d} width-exponent",
                paper=PAPER,
                claim=f"at {g} the distance between the network and the DMFT (mean over steps "
                f"of |ΔL|) shrinks ∝ N^(−1/2) (widths {', '.join(map(str, widths))})",
                theory=-0.5,
                margin=WIDTH_MARGIN,
                reason="half the gap 1/2 to the neighbouring laws N^0 (no convergence) and "
                "N^(−1) (the mean's O(1/N) bias alone, without the O(1/√N) fluctuation)",
                figure=FIGURE,
                theory_text="−1/2",
            ),
            Claim(
                id=f"{d} width-2x",
                paper=PAPER,
                claim=f"at {g} the network's distance to the DMFT is at least 2× smaller at "
                f"N = {hi} than at N = {lo} (log₂ of the ratio above 1)",
                theory=1.0,
                margin=0.0,
                reason="the issue's oracle 3 is a bound (at least 2× smaller): no band; "
                f"N^(−1/2) predicts log₂ √({hi}/{lo}) = {0.5 * math.log2(hi / lo):.3g}",
                kind="above",
                figure=FIGURE,
                theory_text="1 (2×)",
            ),
            Claim(
                id=f"{d} parting-gamma",
                paper=PAPER,
                claim=f"the DMFT's test loss parts from the NTK's by more than {PART:.0%} of the "
                "initial loss at a γ below 1 (log₁₀ γ_part below 0)",
                theory=0.0,
                margin=0.0,
                reason="features move at a rate γ relative to the function (c = η0/γ against "
                "η0/γ²), so by γ = 1 the kernels have moved by O(1): a bound, no band",
                kind="below",
                figure=FIGURE,
                resolution=_spacing(c.gammas),
                theory_text="log₁₀ 1 = 0",
            ),
            Claim(
                id=f"{d} not-ntk",
                paper=PAPER,
                claim=f"at {g} the DMFT is farther from the NTK theory than the N = {hi} network "
                "is from the DMFT (log₁₀ of the ratio of distances above 0)",
                theory=0.0,
                margin=0.0,
                reason="the issue's oracle 4 is a bound (larger): no band",
                kind="above",
                figure=FIGURE,
                theory_text="0 (ratio 1)",
            ),
            Claim(
                id=f"{d} alignment",
                paper=PAPER,
                claim=f"the N = {hi} network's final NTK aligns with yyᵀ more at "
                f"γ = {max(c.gammas):.3g} than at γ = {min(c.gammas):.3g}",
                theory=0.0,
                margin=1.0 / math.sqrt(hi),
                reason=f"1/√N_max = {1 / math.sqrt(hi):.3g}: a change of the size of the initial "
                "NTK's finite-width fluctuations is practically none",
                kind="above",
                figure=FIGURE,
                theory_text="0",
            ),
        ]
    return out


def measures(c: Config, r: dict) -> dict[str, float]:
    """The per-seed values of one dataset's claims from `run_case`'s arrays `r`."""
    gi = gamma_index(c)
    order = np.argsort(c.widths)
    widths = np.asarray(c.widths)[order]
    dist = lambda tr, te: 0.5 * (distance(*tr) + distance(*te))
    d_net = dist(  # (width,) at gamma_width, in increasing width
        (r["train_loss"][gi, order], r["dmft_train"][gi]),
        (r["test_loss"][gi, order], r["dmft_test"][gi]),
    )
    d_ntk = dist((r["dmft_train"][gi], r["ntk_train"][gi]), (r["dmft_test"][gi], r["ntk_test"][gi]))
    gap = np.max(np.abs(r["dmft_test"] - r["ntk_test"]), axis=-1) / r["ntk_test"][:, :1].ravel()
    parted = np.flatnonzero(gap > PART)
    gammas = np.asarray(c.gammas)
    align = r["alignment"][:, order[-1]]
    return {
        "width-exponent": _slope(widths, d_net),
        "width-2x": float(np.log2(d_net[0] / d_net[-1])),
        "parting-gamma": float(np.log10(gammas[parted[0]])) if parted.size else math.nan,
        "not-ntk": float(np.log10(d_ntk / d_net[-1])),
        "alignment": float(align[-1] - align[0]),
    }


def judge_all(c: Config, per_seed: list[dict[str, dict]]) -> list[dict]:
    """The rows of `declare(c)` measured on `per_seed` (one `{dataset: run_case arrays}` per
    seed)."""
    values = [{d: measures(c, r[d]) for d in c.datasets} for r in per_seed]
    rows = []
    for claim in declare(c):
        d, cid = claim.id.split(" ", 1)
        samples = [v[d][cid] for v in values]
        note = "per-seed values: " + ", ".join(
            "—" if not np.isfinite(x) else f"{x:.3g}" for x in samples
        )
        rows.append(evidence.judge(claim, samples, note=note))
    return rows
