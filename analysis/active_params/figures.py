"""Figures of the active-params study (means over seeds, bars/whiskers the seeds' range; the
wall-time ratios: median and range over the timing repeats)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots
from .config import RULES, Config


def _err(a: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """(mean over seeds, [mean − min, max − mean])."""
    m = a.mean("seed").values
    return m, np.stack([m - a.min("seed").values, a.max("seed").values - m])


def figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    """active_share_by_layer, reinit_accuracy and lws_accuracy."""
    names = [str(n) for n in ds.network.values]
    mlps = [n for n in names if n.startswith("mlp-")]
    widths = np.array([int(n.split("-")[1]) for n in mlps])
    scores, dsets = list(ds.score.values), list(ds.dataset.values)

    # active share per layer against width: rows scores, columns datasets
    fig, axes = _plots.plt.subplots(len(scores), len(dsets), figsize=(5 * len(dsets),
                                    3.6 * len(scores)), squeeze=False)  # fmt: skip
    for i, sc in enumerate(scores):
        for j, d in enumerate(dsets):
            ax = axes[i, j]
            r = ds.sel(network=mlps, dataset=d)
            for li in range(c.depth + 1):
                m, e = _err(r.active_share.sel(score=sc, layer=li))
                ax.errorbar(widths, m, yerr=e, fmt="o-", color=f"C{li}", label=f"layer {li}")
                size = r.layer_size.sel(layer=li) / r.layer_size.sum("layer")
                ax.plot(widths, size.values, ":", color=f"C{li}")
            ax.set_xscale("log", base=2)
            ax.set(xlabel="MLP width", ylabel="share of active", title=f"{d}: {sc} score")
    axes[0, 0].legend(fontsize=7, title="0 = bottom; dotted: size share", title_fontsize=7)
    _plots.save(fig, store.figure("active_share_by_layer"))

    # accuracy drop after re-initialisation per rule (mean over datasets, k), per score
    fig, axes = _plots.plt.subplots(1, len(scores), figsize=(5 * len(scores), 3.8),
                                    squeeze=False, sharey=True)  # fmt: skip
    drop = (ds.sgd_test_accuracy - ds.reinit_test_accuracy).mean(("dataset", "k"))
    x = np.arange(len(names))
    w = 0.8 / len(RULES)
    for i, sc in enumerate(scores):
        ax = axes[0, i]
        for j, rule in enumerate(RULES):
            m, e = _err(drop.sel(score=sc, rule=rule))
            ax.bar(x + (j - len(RULES) / 2 + 0.5) * w, m, w, yerr=e, color=f"C{j}", label=rule)
        ax.set_xticks(x, names, fontsize=8)
        ax.set(title=f"{sc} score: accuracy drop after reset", ylabel="trained − reset accuracy")
    axes[0, 0].legend(fontsize=7)
    _plots.save(fig, store.figure("reinit_accuracy"))

    # LWS variants and PLWS against SGD on the focus network; PLWS wall-time ratio
    fig, axes = _plots.plt.subplots(1, 2, figsize=(11, 3.8))
    f = ds.sel(network=c.focus)
    labels = ["SGD"] + [f"LWS {v}" for v in ds.variant.values]
    labels += [f"PLWS p={p:g}" for p in ds.p.values]
    x = np.arange(len(labels))
    for j, d in enumerate(dsets):
        series = [f.sgd_test_accuracy.sel(dataset=d)]
        series += [ds.lws_test_accuracy.sel(dataset=d, variant=v) for v in ds.variant.values]
        series += [ds.plws_test_accuracy.sel(dataset=d, p=p) for p in ds.p.values]
        ms, es = zip(*(_err(s) for s in series), strict=True)
        off = (j - len(dsets) / 2 + 0.5) * 0.8 / len(dsets)
        axes[0].bar(x + off, ms, 0.8 / len(dsets), yerr=np.stack(es, 1), label=d)
    axes[0].set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
    axes[0].set(ylabel="test accuracy", title=f"{c.focus}: layer-wise sparse SGD vs SGD")
    for j, d in enumerate(dsets):  # equal wall time: hollow markers over the PLWS bars
        acc = ds.plws_equal_time_test_accuracy.sel(dataset=d).mean("seed")
        eq = [float(acc.sel(p=p)) for p in ds.p.values]
        off = (j - len(dsets) / 2 + 0.5) * 0.8 / len(dsets)
        axes[0].plot(x[-len(ds.p):] + off, eq, "o", mfc="none", color="k",
                     label="PLWS, equal wall time" if j == 0 else None)  # fmt: skip
    axes[0].legend(fontsize=7)
    sgd = ds.sgd_step_seconds.mean("bracket")
    ratios = {"top-only": sgd / ds.top_step_seconds,
              **{f"p={p:g}": sgd / ds.plws_step_seconds.sel(p=p) for p in ds.p.values},
              "SGD/SGD": ds.sgd_step_seconds.sel(bracket="first")
              / ds.sgd_step_seconds.sel(bracket="last")}  # fmt: skip
    xs = np.arange(len(ratios))
    for j, d in enumerate(dsets):
        r = [s.sel(dataset=d) for s in ratios.values()]
        med = np.array([float(v.median()) for v in r])
        err = np.stack([med - [float(v.min()) for v in r], [float(v.max()) for v in r] - med])
        axes[1].errorbar(xs + 0.1 * j, med, yerr=err, fmt="o", color=f"C{j}", label=d)
    axes[1].axhline(1.0, color="k", ls="--", lw=1)
    axes[1].axhspan(2.0, 5.0, color="C2", alpha=0.15, label="paper: 2–5×")
    axes[1].set_xticks(xs, list(ratios), fontsize=8)
    axes[1].set(
        ylabel="SGD step time / step time",
        title=f"{c.focus}: per-step wall-time ratio (median, range over repeats)",
    )
    axes[1].legend(fontsize=7)
    _plots.save(fig, store.figure("lws_accuracy"))
