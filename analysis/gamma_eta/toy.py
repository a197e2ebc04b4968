"""The deep-linear toy model (`lazyrich.theory.deep_linear`) against its own GD simulation.

For each depth L (the number of weight layers, the MLP's L and the toy's number of scalar
factors), centred, a0 = 1, y = 1, in float64:

- **η_max.** For every γ of `TOY_GAMMAS`, GD runs at 41 learning rates spanning ±1 decade
  around the prediction 2/max(λ_init, λ_solution) (0.05-decade steps); the simulated η_max is
  the largest of them after which the loss ends below 1e-6 of its start. Least-squares slopes of
  log η_max over γ ≤ 1e-2 and γ ≥ 1e2 are compared with 2 and 2/L.
- **Plateau.** At γ ∈ `PLATEAU_GAMMAS` and η = 0.02 η_max(γ) (so GD tracks gradient flow),
  the first step with f ≥ y/2 against the exact gradient-flow escape time `plateau_length`.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from lazyrich.theory import deep_linear as dl

TOY_GAMMAS = np.logspace(-4, 4, 17)
PLATEAU_GAMMAS = np.array([10.0, 100.0, 1000.0, 10000.0])
_SPAN = np.linspace(-1.0, 1.0, 41)


def _slope(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def toy_eta_max(L: int, steps: int = 3000) -> dict[str, np.ndarray]:
    """Predicted and simulated η_max over `TOY_GAMMAS` for depth L."""
    with jax.enable_x64(True):
        pred = np.asarray(dl.eta_star_prediction(L, TOY_GAMMAS))
        etas = pred[:, None] * 10.0 ** _SPAN[None, :]
        gam = np.broadcast_to(TOY_GAMMAS[:, None], etas.shape)
        run = dl.simulate(L, gam, etas, steps)
        loss = np.asarray(run.loss)
    ok = np.isfinite(loss[..., -1]) & (loss[..., -1] < 1e-6 * loss[..., 0])
    sim = np.where(ok.any(1), np.where(ok, etas, -np.inf).max(1), np.nan)
    return {"gamma": TOY_GAMMAS, "predicted": pred, "simulated": sim}


def toy_plateau(L: int) -> dict[str, np.ndarray]:
    """Predicted (exact flow) and simulated (GD) escape steps at `PLATEAU_GAMMAS`."""
    with jax.enable_x64(True):
        etas = 0.02 * np.asarray(dl.eta_star_prediction(L, PLATEAU_GAMMAS))
        pred = np.array(
            [
                dl.plateau_length(L, 1.0, float(g), float(e))
                for g, e in zip(PLATEAU_GAMMAS, etas, strict=True)
            ]
        )
        steps = int(math.ceil(1.5 * pred.max())) + 10
        f = np.asarray(dl.simulate(L, PLATEAU_GAMMAS, etas, steps).f)
    reached = f >= 0.5
    sim = np.where(reached.any(1), np.argmax(reached, axis=1).astype(float), np.nan)
    return {"gamma": PLATEAU_GAMMAS, "eta": etas, "predicted": pred, "simulated": sim}


def toy_summary(L: int) -> tuple[dict, dict]:
    """`(summary, curves)` for depth L: slopes, their theory, plateau comparison."""
    em = toy_eta_max(L)
    pl = toy_plateau(L)
    g = em["gamma"]
    small, large = g <= 1e-2, g >= 1e2
    rel = np.abs(pl["simulated"] / pl["predicted"] - 1.0)
    summary = {
        "theory": list(dl.theory_slopes(L)),
        "eta_max_slope_small_gamma_simulated": _slope(g[small], em["simulated"][small]),
        "eta_max_slope_large_gamma_simulated": _slope(g[large], em["simulated"][large]),
        "eta_max_slope_small_gamma_predicted": _slope(g[small], em["predicted"][small]),
        "eta_max_slope_large_gamma_predicted": _slope(g[large], em["predicted"][large]),
        "eta_max_simulated_over_predicted": {
            "min": float(np.nanmin(em["simulated"] / em["predicted"])),
            "max": float(np.nanmax(em["simulated"] / em["predicted"])),
        },
        "plateau_steps": {
            f"{gg:.3g}": {"predicted": float(p), "simulated": None if np.isnan(s) else float(s)}
            for gg, p, s in zip(pl["gamma"], pl["predicted"], pl["simulated"], strict=True)
        },
        "plateau_max_relative_error": None if np.isnan(rel).all() else float(np.nanmax(rel)),
    }
    return summary, {"eta_max": em, "plateau": pl}
