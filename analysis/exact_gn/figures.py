"""Figures of the exact Gauss-Newton study (`analysis/exact_gn`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .._plots import plt, save

if TYPE_CHECKING:
    from .config import Config

COLORS = {
    "gn": "C3", "adam": "C0", "sgd": "C2", "adam_paper": "C9", "sgd_paper": "C8", "gn_relu": "C1",
}  # fmt: skip
LABELS = {
    "gn": "exact GN", "adam": "Adam", "sgd": "SGD", "adam_paper": "Adam (paper lr)",
    "sgd_paper": "SGD (paper lr)", "gn_relu": "exact GN, ReLU first block",
}  # fmt: skip


def figures(ds: xr.Dataset, store: StudyDir, c: Config, summary: dict) -> None:
    """curves, batch_loss_drop, ntk_cka (against epoch) and ntk_cka_vs_loss (means over
    seeds; runs that are absent in a setting are all NaN and not drawn)."""
    ds = ds.mean("seed", skipna=True)
    settings = [str(s) for s in ds.setting.values]
    opts = [str(o) for o in ds.optimizer.values]
    ep = ds.epoch.values

    fig, axes = plt.subplots(len(settings), 3, figsize=(13, 3.6 * len(settings)), squeeze=False)
    for i, s in enumerate(settings):
        for o in opts:
            r = ds.sel(setting=s, optimizer=o)
            kw = dict(color=COLORS[o])
            axes[i, 0].semilogy(ep, r.train_loss, label=f"{LABELS[o]} train", **kw)
            axes[i, 0].semilogy(ep, r.test_loss, "--", label=f"{LABELS[o]} test", **kw)
            axes[i, 1].plot(ep, r.train_accuracy, label=f"{LABELS[o]} train", **kw)
            axes[i, 1].plot(ep, r.test_accuracy, "--", label=f"{LABELS[o]} test", **kw)
        axes[i, 0].set(xlabel="epoch", ylabel=f"{c.loss} loss", title=f"{s} batch: loss")
        axes[i, 1].set(xlabel="epoch", ylabel="accuracy", title=f"{s} batch: accuracy")
        axes[i, 0].legend(fontsize=7)
        # the per-batch change, averaged per epoch
        spe = int(ds.steps_per_epoch.sel(setting=s))
        e_s = int(ds.epochs.sel(setting=s))
        for o in opts:
            ch = ds.batch_loss_change.sel(setting=s, optimizer=o).values[: e_s * spe]
            axes[i, 2].plot(
                np.arange(1, e_s + 1),
                -ch.reshape(e_s, spe).mean(1),
                color=COLORS[o],
                label=LABELS[o],
            )
        axes[i, 2].set(
            xlabel="epoch",
            ylabel="−(L_after − L_before)/L_before",
            title=f"{s} batch: batch-loss drop (epoch mean)",
        )
        axes[i, 2].legend(fontsize=7)
    save(fig, store.figure("curves"))

    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.8), squeeze=False)
    for i, s in enumerate(settings):
        spe = int(ds.steps_per_epoch.sel(setting=s))
        e_s = int(ds.epochs.sel(setting=s))
        for o in opts:
            ch = ds.batch_loss_change.sel(setting=s, optimizer=o).values[: e_s * spe]
            axes[0, i].plot(
                np.arange(1, ch.size + 1) / spe, -ch, lw=0.8, color=COLORS[o], label=LABELS[o]
            )
        axes[0, i].set(
            xlabel="epoch", ylabel="relative batch-loss drop", title=f"{s} batch: every step"
        )
        axes[0, i].legend(fontsize=7)
    save(fig, store.figure("batch_loss_drop"))

    fig, axes = plt.subplots(len(settings), 3, figsize=(13, 3.6 * len(settings)), squeeze=False)
    me = ds.measure_epoch.values
    for i, s in enumerate(settings):
        for o in opts:
            r = ds.sel(setting=s, optimizer=o)
            axes[i, 0].plot(me, r.ntk_similarity, "o-", color=COLORS[o], label=LABELS[o])
            axes[i, 1].plot(me, r.kernel_distance, "o-", color=COLORS[o], label=LABELS[o])
            for b in ds.block.values:
                axes[i, 2].plot(
                    me,
                    r.cka.sel(block=b),
                    "o-" if b == 1 else "s--",
                    color=COLORS[o],
                    label=f"{LABELS[o]} block {b}",
                )
        axes[i, 0].set(xlabel="epoch", ylabel="cos(K0 v, Kt v)", title=f"{s} batch: NTK similarity")
        axes[i, 1].set(
            xlabel="epoch", ylabel="1 − cos(K0, Kt)", title=f"{s} batch: kernel distance"
        )
        axes[i, 2].set(
            xlabel="epoch", ylabel="linear CKA to init", title=f"{s} batch: block outputs"
        )
        axes[i, 0].legend(fontsize=7)
        axes[i, 2].legend(fontsize=6)
    save(fig, store.figure("ntk_cka"))

    _vs_loss(ds, store, summary)


def _vs_loss(ds: xr.Dataset, store: StudyDir, summary: dict) -> None:
    """NTK similarity, kernel distance and CKA against the train loss (training runs right to
    left on a log axis): the fair comparison between optimizers that fit at different speeds.
    The dotted line is the seed-mean matched level."""
    settings = [str(s) for s in ds.setting.values]
    opts = [str(o) for o in ds.optimizer.values]
    me = ds.measure_epoch.values
    fig, axes = plt.subplots(len(settings), 3, figsize=(13, 3.6 * len(settings)), squeeze=False)
    matched = summary["matched_train_loss"]
    for i, s in enumerate(settings):
        for o in opts:
            r = ds.sel(setting=s, optimizer=o)
            loss = r.train_loss.sel(epoch=me).values
            kw = dict(color=COLORS[o])
            axes[i, 0].plot(loss, r.ntk_similarity, "o-", ms=3, label=LABELS[o], **kw)
            axes[i, 1].plot(loss, r.kernel_distance, "o-", ms=3, label=LABELS[o], **kw)
            for b in ds.block.values:
                axes[i, 2].plot(
                    loss,
                    r.cka.sel(block=b),
                    "o-" if b == 1 else "s--",
                    ms=3,
                    label=f"{LABELS[o]} block {b}",
                    **kw,
                )
        names = ("cos(K0 v, Kt v)", "1 − cos(K0, Kt)", "linear CKA to init")
        titles = ("NTK similarity", "kernel distance", "block outputs")
        for j in range(3):
            ax = axes[i, j]
            ax.set_xscale("log")
            ax.invert_xaxis()
            levels = [m["level"] for m in matched.get(s, []) if m["level"] is not None]
            if levels:
                ax.axvline(float(np.mean(levels)), color="k", ls=":", lw=1)
            ax.set(xlabel="train loss", ylabel=names[j], title=f"{s} batch: {titles[j]} vs loss")
        axes[i, 0].legend(fontsize=7)
        axes[i, 2].legend(fontsize=6)
    save(fig, store.figure("ntk_cka_vs_loss"))
