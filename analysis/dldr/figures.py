"""The DLDR study's figures: explained variance, accuracy against epochs, against d, and
under label noise (mean over seeds, shaded min–max)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots
from .config import Config
from .summary import pick_tuned
from .walk import isotropic_walk_explained_variance, walk_explained_variance


def _band(ax, x, curves, fmt, label):
    curves = np.atleast_2d(curves)
    (line,) = ax.plot(x, curves.mean(0), fmt, ms=3, label=label)
    if curves.shape[0] > 1:
        ax.fill_between(x, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)


def figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    """Write explained_variance, accuracy_vs_epoch, accuracy_vs_d and label_noise."""
    dmax = max(c.ds)
    fig, ax = _plots.figure()
    comps = ds.component.values
    for pre, lab in (("", "clean"), ("noisy_", "label noise")):
        if f"{pre}explained_variance_ratio" in ds:
            cum = np.cumsum(ds[f"{pre}explained_variance_ratio"].values, axis=-1)
            _band(ax, comps, cum, "-", lab)
            walks = [[walk_explained_variance(n, int(d)) for d in comps]
                     for n in ds[f"{pre}step_norm"].values]  # fmt: skip
            _band(ax, comps, np.asarray(walks), ":", f"random walk, {lab}'s step lengths")
    t = int(ds.attrs["samples"])
    iso = [isotropic_walk_explained_variance(t, int(d)) for d in comps]
    ax.plot(comps, iso, "k--", lw=0.8, label="isotropic random walk")
    ax.axvline(max(c.ds), color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="d (principal directions)", ylabel="explained variance", ylim=(0, 1.02),
           title=f"trajectory PCA, {int(ds.attrs['samples'])} samples, "
                 f"D = {int(ds.attrs['num_params'])}")  # fmt: skip
    ax.legend(fontsize=8)
    _plots.save(fig, store.figure("explained_variance"))

    eta, _ = pick_tuned(ds)
    fig, ax = _plots.figure()
    se = c.sample_epochs
    _band(ax, ds.sgd_epoch.values, ds.sgd_test_accuracy.values, "k-", "SGD (sampling, continued)")
    _band(ax, ds.tuned_epoch.values, ds.tuned_test_accuracy.sel(eta=eta).values, "g-",
          f"tuned SGD (lr {eta:g}, step decay)")  # fmt: skip
    x = se + ds.pbfgs_epoch.values
    _band(ax, x, ds.pbfgs_test_accuracy.sel(d=dmax).values, "r-s", f"P-BFGS d={dmax}")
    _band(ax, x, ds.psgd_test_accuracy.sel(d=dmax).values, "b-o", f"P-SGD d={dmax}")
    _band(ax, x, ds.random_test_accuracy.values, "m-^", f"P-BFGS random d={dmax}")
    ax.axvline(se, color="0.6", lw=0.8, ls=":", label="end of sampling")
    ax.set(xlabel="epoch (subspace runs start at the end of sampling)", ylabel="test accuracy")
    ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_epoch"))

    fig, ax = _plots.figure()
    for kind, fmt in (("pbfgs", "r-s"), ("psgd", "b-o")):
        v = ds[f"{kind}_test_accuracy"].isel({f"{kind}_epoch": -1}).values  # (d, seed)
        _band(ax, np.asarray(c.ds), v.T, fmt, "P-BFGS" if kind == "pbfgs" else "P-SGD")
    tuned = ds.tuned_test_accuracy.sel(eta=eta).isel(tuned_epoch=-1).values.mean()
    ax.axhline(float(tuned), color="g", lw=1, label="tuned SGD")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(c.ds), [str(d) for d in c.ds])
    ax.set(xlabel="d", ylabel="final test accuracy")
    ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_d"))

    if "noisy_sgd_test_accuracy" in ds:
        fig, ax = _plots.figure()
        e = ds.noisy_sgd_epoch.values
        _band(ax, e, ds.noisy_sgd_train_accuracy.values, "k--", "SGD train (noisy labels)")
        _band(ax, e, ds.noisy_sgd_test_accuracy.values, "k-", "SGD test")
        x = se + ds.noisy_pbfgs_epoch.values
        v = ds.noisy_pbfgs_test_accuracy.sel(d=dmax).values
        _band(ax, x, v, "r-s", f"P-BFGS d={dmax} test")
        v = ds.noisy_pbfgs_train_accuracy.sel(d=dmax).values
        _band(ax, x, v, "r--", f"P-BFGS d={dmax} train (noisy)")
        ax.set(xlabel="epoch", ylabel="accuracy", title=f"label noise {c.label_noise:.0%}")
        ax.legend(fontsize=7)
        _plots.save(fig, store.figure("label_noise"))
