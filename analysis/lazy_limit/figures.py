"""Figures of the lazy-limit study: loss curves against theory, theory gaps, kernel distance."""

from __future__ import annotations

import numpy as np

from lazyrich.results import StudyDir

from .. import _plots


def max_gap(g: np.ndarray) -> np.ndarray:
    """Max over steps; NaN (a diverged run) wins."""
    return np.where(np.isnan(g).any(-1), np.nan, np.nanmax(np.nan_to_num(g, nan=0.0), -1))


def figures(c, gammas, steps, ksteps, res, store: StudyDir, order) -> None:
    """Write loss_curves, theory_gap and kernel_distance figures for the study's results."""
    plt = _plots.plt
    nd = len(c.datasets)
    colors = plt.cm.viridis(np.linspace(0, 0.9, gammas.size))
    wi = int(order[-1])  # the widest network
    shown = np.unique(np.linspace(0, gammas.size - 1, min(4, gammas.size)).round().astype(int))
    fig, axes = plt.subplots(2, nd, figsize=(5.5 * nd, 8), squeeze=False)
    t = np.maximum(steps, 0.5)  # step 0 drawn at 0.5 on the log axis
    for j, d in enumerate(c.datasets):
        r = res[d]
        for i, (kind, meas, emp, inf) in enumerate(
            (
                ("train", "train_loss", "emp_train", "inf_train"),
                ("test", "test_loss", "emp_test", "inf_test"),
            )
        ):
            ax = axes[i, j]
            for gi in shown:
                col = colors[gi]
                ax.plot(t, r[meas][wi, gi], color=col, lw=2, label=f"γ={gammas[gi]:.3g} measured")
                ax.plot(t, r[emp][wi, gi], color=col, ls="--", lw=1.2)
                ax.plot(t, r[inf][gi], color=col, ls=":", lw=1.2)
            ax.set(xscale="log", yscale="log", xlabel="step", ylabel=f"{kind} loss")
            ax.set_title(f"{d}, N={c.widths[wi]}: {kind} (-- empirical NTK, ··· infinite)")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    _plots.save(fig, store.figure("loss_curves"))

    fig, axes = plt.subplots(1, nd, figsize=(5.5 * nd, 4.2), squeeze=False)
    wcol = plt.cm.plasma(np.linspace(0, 0.8, len(c.widths)))
    for j, d in enumerate(c.datasets):
        ax = axes[0, j]
        for k, w in enumerate(order):
            ax.plot(
                gammas,
                max_gap(res[d]["gap"][w]),
                "o-",
                color=wcol[k],
                label=f"N={c.widths[w]} emp. NTK",
            )
            ax.plot(
                gammas,
                max_gap(res[d]["gap_infinite"][w]),
                "s--",
                color=wcol[k],
                label=f"N={c.widths[w]} infinite",
            )
        ax.axhline(0.05, color="0.5", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="γ", ylabel="max relative loss gap", title=d)
        ax.legend(fontsize=7)
    _plots.save(fig, store.figure("theory_gap"))

    fig, axes = plt.subplots(1, nd, figsize=(5.5 * nd, 4.2), squeeze=False)
    for j, d in enumerate(c.datasets):
        ax = axes[0, j]
        for k, w in enumerate(order):
            kd = res[d]["kernel_distance"][w]
            ax.plot(
                gammas,
                np.clip(kd[:, -1], 1e-16, None),
                "o-",
                color=wcol[k],
                label=f"N={c.widths[w]}, step {ksteps[-1]}",
            )
            if ksteps.size > 1:
                ax.plot(
                    gammas,
                    np.clip(kd[:, 0], 1e-16, None),
                    "x:",
                    color=wcol[k],
                    label=f"N={c.widths[w]}, step {ksteps[0]}",
                )
        ax.set(xscale="log", yscale="log", xlabel="γ", ylabel="kernel distance to init", title=d)
        ax.legend(fontsize=7)
    _plots.save(fig, store.figure("kernel_distance"))
