"""Figures of the active-params study."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots
from ._config import RULES, Config


def figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    """active_share_by_layer, reinit_accuracy and lws_accuracy."""
    names = [str(n) for n in ds.network.values]
    mlps = [n for n in names if n.startswith("mlp-")]
    cnn = "cnn" in names

    # active share and fraction per layer against width
    ncols = 3 if cnn else 2
    fig, axes = _plots.plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.0), squeeze=False)
    widths = np.array([int(n.split("-")[1]) for n in mlps])
    n_layers = c.depth + 1
    for li in range(n_layers):
        r = ds.sel(network=mlps, layer=li)
        size_share = r.layer_size.values / ds.sel(network=mlps).layer_size.sum("layer").values
        axes[0, 0].plot(widths, r.active_share.values, "o-", color=f"C{li}", label=f"layer {li}")
        axes[0, 0].plot(widths, size_share, ":", color=f"C{li}")
        axes[0, 1].plot(widths, r.active_fraction.values, "o-", color=f"C{li}", label=f"layer {li}")
    for ax in axes[0, :2]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("MLP width")
    axes[0, 0].set(
        ylabel="share of active parameters",
        title=f"active share per layer (dotted: share of parameters), top {c.active_percent:g}%",
    )
    axes[0, 1].set(ylabel="active / layer size", title="fraction of each layer active")
    axes[0, 1].set_yscale("log")
    axes[0, 0].legend(fontsize=7, title="0 = bottom", title_fontsize=7)
    if cnn:
        r = ds.sel(network="cnn")
        ok = np.isfinite(r.layer_size.values)
        x = np.arange(ok.sum())
        axes[0, 2].bar(x - 0.2, r.active_share.values[ok], 0.4, label="active share")
        axes[0, 2].bar(x + 0.2, r.layer_size.values[ok] / r.layer_size.values[ok].sum(), 0.4,
                       label="parameter share")  # fmt: skip
        axes[0, 2].set_xticks(x, ["conv1", "conv2", "fc", "readout"][: ok.sum()])
        axes[0, 2].set(title=f"CNN (N = {c.cnn_width})", ylabel="share")
        axes[0, 2].legend(fontsize=7)
    _plots.save(fig, store.figure("active_share_by_layer"))

    # accuracy after re-initialisation, per rule, one panel per network
    fig, axes = _plots.plt.subplots(
        1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False, sharey=True
    )
    ks = ds.k.values
    for i, name in enumerate(names):
        r = ds.sel(network=name)
        ax = axes[0, i]
        for j, rule in enumerate(RULES):
            ax.plot(ks, r.reinit_test_accuracy.sel(rule=rule), "o-", color=f"C{j}", label=rule)
        ax.axhline(float(r.sgd_test_accuracy), color="k", ls="--", lw=1, label="trained")
        ax.axhline(float(r.init_test_accuracy), color="0.5", ls=":", lw=1, label="init")
        ax.set_xscale("log")
        ax.set(xlabel="k (% of parameters reset)", title=name)
    axes[0, 0].set_ylabel("test accuracy after reset")
    axes[0, 0].legend(fontsize=7)
    _plots.save(fig, store.figure("reinit_accuracy"))

    # LWS variants and PLWS against SGD on the focus network
    fig, axes = _plots.plt.subplots(1, 2, figsize=(11, 3.8))
    sgd = float(ds.sgd_test_accuracy.sel(network=c.focus))
    labels = ["SGD"] + [f"LWS {v}" for v in ds.variant.values] + [f"PLWS p={p:g}" for p in ds.p]
    values = [sgd, *ds.lws_test_accuracy.values, *ds.plws_test_accuracy.values]
    colors = ["k"] + ["C0"] * ds.sizes["variant"] + ["C1"] * ds.sizes["p"]
    axes[0].bar(np.arange(len(values)), values, color=colors)
    axes[0].axhline(sgd, color="k", ls="--", lw=1)
    axes[0].set_xticks(np.arange(len(values)), labels, rotation=35, ha="right", fontsize=8)
    axes[0].set(ylabel="test accuracy", title=f"{c.focus}: layer-wise sparse SGD vs SGD")
    speed = float(ds.sgd_train_seconds.min()) / ds.plws_train_seconds.min("repeat").values
    axes[1].plot(ds.p.values, speed, "o-", color="C1")
    axes[1].axhline(1.0, color="k", ls="--", lw=1)
    axes[1].set(
        xlabel="p (probability of a full update)",
        ylabel="SGD time / PLWS time",
        title=f"{c.focus}: training wall-time ratio, {ds.attrs['steps']} steps",
    )
    _plots.save(fig, store.figure("lws_accuracy"))
