"""The lazy-limit study's claims (`summary.json["claims"]`), decided by rules fixed here.

Per dataset, from the repeated seeds (S ≥ 2 for an interval):

- **7. Gap to the empirical-NTK closed form ∝ γ.** Per seed, at the widest network, the
  log-log least-squares slope of the largest relative gap (over steps, train and test) against
  γ over the γ ≤ 1 of the grid. Theory 1: the centred network f = (net − net₀)/γ differs from
  its linearisation by O(γ) (the second-order term of net − net₀ is O(γ²) in output units
  before the 1/γ).
- **8. Gap to the infinite-width closed form shrinks with width.** Per seed, at the smallest
  γ, the log-log slope of that gap against the width (≥ 4 widths). Theory −1/2: the empirical
  NTK at initialisation fluctuates around the infinite-width one by O(1/√N).

Interval: 90% t-interval of the per-seed slopes. `agrees` when the theory is inside it and
the interval is narrower than `WIDTH`; `disagrees` when outside; `undecided` otherwise (or
with one seed, or fewer than 2 usable points).
"""

from __future__ import annotations

import math

import numpy as np

from ..gamma_eta.claims import t_interval
from .figures import max_gap

PAPER = "Atanasov et al. 2024 (arXiv 2410.04642), lazy limit; Jacot et al. 2018 (NTK)"
WIDTH = 0.5


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def _verdict(theory: float, m: dict) -> str:
    if m["lo"] is None or m["hi"] is None:
        return "undecided"
    if not m["lo"] <= theory <= m["hi"]:
        return "disagrees"
    return "agrees" if m["hi"] - m["lo"] < WIDTH else "undecided"


def lazy_claims(c, gammas: np.ndarray, per_seed: list[dict]) -> list[dict]:
    order = np.argsort(c.widths)
    widths = np.asarray(c.widths)[order]
    lazy = gammas <= 1.0 * (1 + 1e-9)
    out = []
    rule = f"theory inside the 90% t-interval over seeds, the interval narrower than {WIDTH}"
    for d in c.datasets:
        s7 = [_slope(gammas[lazy], max_gap(r[d]["gap"])[order[-1], lazy]) for r in per_seed]
        s8 = [_slope(widths, max_gap(r[d]["gap_infinite"])[order, 0]) for r in per_seed]
        for cid, slopes, theory, claim, fig in (
            (
                "7", s7, 1.0,
                f"gap between the centred network (N = {widths[-1]}) and its empirical-NTK "
                "closed form grows ∝ γ (exponent over γ ≤ 1)",
                "figures/theory_gap.png",
            ),
            (
                "8", s8, -0.5,
                f"gap to the infinite-width closed form at γ = {gammas[0]:.3g} shrinks with "
                f"width ∝ N^(−1/2) (widths {', '.join(str(w) for w in widths)})",
                "figures/theory_gap.png",
            ),
        ):  # fmt: skip
            m = t_interval(slopes)
            out.append(
                {
                    "id": f"{d} {cid}",
                    "paper": PAPER,
                    "claim": claim,
                    "theory": theory,
                    "measured": m,
                    "verdict": _verdict(theory, m),
                    "rule": rule,
                    "figure": fig,
                    "note": "per-seed slopes: "
                    + ", ".join("—" if not np.isfinite(v) else f"{v:.3g}" for v in slopes),
                }  # fmt: skip
            )
    return out
