"""The DLDR study's figures: explained variance, accuracy against epochs and against d."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots
from .config import Config


def figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    """Write explained_variance, accuracy_vs_epoch and accuracy_vs_d."""
    nets, conds = list(ds.network.values), list(ds.condition.values)
    styles = {"clean": "-", "label_noise": "--"}

    fig, ax = _plots.figure()
    comps = ds.component.values
    for n in nets:
        for k in conds:
            cum = np.cumsum(ds.explained_variance_ratio.sel(network=n, condition=k).values)
            (line,) = ax.plot(comps, cum, styles[k], label=f"{n}, {k.replace('_', ' ')}")
            sel = np.asarray(c.ds) - 1
            ax.plot(comps[sel], cum[sel], "o", color=line.get_color(), ms=4)
    ax.set(
        xlabel="d (principal directions)",
        ylabel="explained variance",
        title=f"trajectory PCA, {int(ds.attrs['samples'])} samples",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=8)
    _plots.save(fig, store.figure("explained_variance"))

    dmax = int(max(c.ds))
    fig, axes = _plots.plt.subplots(
        len(nets), len(conds), figsize=(5.0 * len(conds), 3.6 * len(nets)), squeeze=False
    )
    for i, n in enumerate(nets):
        for j, k in enumerate(conds):
            ax = axes[i, j]
            v = ds.sel(network=n, condition=k)
            ax.plot(ds.sgd_epoch.values, v.sgd_test_accuracy.values, "k-", label="SGD")
            ax.axvline(c.sample_epochs, color="0.6", lw=0.8, ls=":", label="end of sampling")
            ax.plot(
                ds.epoch.values,
                v.psgd_test_accuracy.sel(d=dmax).values,
                "b-o",
                ms=3,
                label=f"P-SGD d={dmax}",
            )
            ax.plot(
                ds.epoch.values,
                v.pbfgs_test_accuracy.sel(d=dmax).values,
                "r-s",
                ms=3,
                label=f"P-BFGS d={dmax}",
            )
            ax.set(xlabel="epoch", ylabel="test accuracy", title=f"{n}, {k.replace('_', ' ')}")
            ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_epoch"))

    fig, axes = _plots.plt.subplots(1, len(nets), figsize=(5.0 * len(nets), 3.8), squeeze=False)
    for i, n in enumerate(nets):
        ax = axes[0, i]
        for k in conds:
            v = ds.sel(network=n, condition=k)
            lab = "" if k == "clean" else " (noisy)"
            ax.plot(
                c.ds,
                v.pbfgs_test_accuracy.values[:, -1],
                "r" + styles[k] + "s",
                label="P-BFGS" + lab,
            )
            ax.plot(
                c.ds, v.psgd_test_accuracy.values[:, -1], "b" + styles[k] + "o", label="P-SGD" + lab
            )
            ax.axhline(
                float(v.sgd_test_accuracy.values[-1]),
                color="k",
                ls=styles[k],
                lw=1,
                label="full SGD" + lab,
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(c.ds), [str(d) for d in c.ds])
        ax.set(xlabel="d", ylabel="final test accuracy", title=n)
        ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_d"))
