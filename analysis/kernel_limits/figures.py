"""The kernel-limits figure: test loss against step, one panel per γ, per dataset: the networks
at each width beside the DMFT and the NTK theory."""

from __future__ import annotations

import numpy as np

from lazyrich.results import StudyDir

from .. import _plots


def loss_curves(c, steps: np.ndarray, res: dict[str, dict], store: StudyDir, seed: int) -> None:
    """Write `figures/loss_curves.png` for one seed's `{dataset: run_case arrays}`."""
    plt = _plots.plt
    nd, ng = len(c.datasets), len(c.gammas)
    fig, axes = plt.subplots(nd, ng, figsize=(3.6 * ng, 3.2 * nd), squeeze=False)
    order = np.argsort(c.widths)
    colors = plt.cm.viridis(np.linspace(0.15, 0.85, len(order)))
    t = np.maximum(steps, 0.5)  # step 0 drawn at 0.5 on the log axis
    for i, d in enumerate(c.datasets):
        r = res[d]
        for j, g in enumerate(c.gammas):
            ax = axes[i, j]
            for k, w in enumerate(order):
                ax.plot(t, r["test_loss"][j, w], color=colors[k], lw=1.4, label=f"N={c.widths[w]}")
            dm, err = r["dmft_test"][j], r["dmft_test_mc_error"][j]
            ax.plot(t, dm, color="k", lw=1.8, label="DMFT")
            ax.fill_between(t, dm - 2 * err, dm + 2 * err, color="k", alpha=0.15, lw=0)
            ax.plot(t, r["ntk_test"][j], color="tab:red", ls="--", lw=1.4, label="NTK")
            ax.set(xscale="log", yscale="log", xlabel="step", title=f"{d}, γ = {g:.3g}")
            if j == 0:
                ax.set_ylabel(f"test loss (seed {seed})")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    _plots.save(fig, store.figure("loss_curves"))
