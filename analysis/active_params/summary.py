"""The headline numbers (summary.json) of the active-params study: means over seeds of every
measure, per dataset, network, score, k and rule (the claims are in `claims`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .config import RULES, Config


def _key(v: float) -> str:
    return f"{v:g}"


def _label(network: str) -> str | int:
    return int(network.split("-", 1)[1]) if network.startswith("mlp-") else network


def bottom_enrichment(ds: xr.Dataset, score: str) -> xr.DataArray:
    """Bottom layer's share of the active set / its share of parameters, per (dataset, seed,
    network) under `score` (> 1: the bottom layer is over-represented among the active)."""
    size_share = ds.layer_size.isel(layer=0) / ds.layer_size.sum("layer")
    return ds.active_share.sel(score=score).isel(layer=0) / size_share


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see DESCRIPTION); the claims come from `claims`."""
    out: dict[str, Any] = {"datasets": list(c.datasets), "focus": c.focus,
                           "seeds": [int(s) for s in ds.seed.values]}  # fmt: skip
    mean = lambda a: a.mean("seed")  # noqa: E731
    out["active_share_by_layer"] = {
        str(d): {sc: {str(_label(str(n))): [float(v) for v in np.asarray(
            mean(ds.active_share.sel(dataset=d, score=sc, network=n))) if np.isfinite(v)]
            for n in ds.network.values} for sc in ds.score.values}
        for d in ds.dataset.values
    }  # fmt: skip
    out["bottom_enrichment"] = {
        sc: {str(d): {str(_label(str(n))): float(mean(bottom_enrichment(ds, sc)).sel(
            dataset=d, network=n)) for n in ds.network.values} for d in ds.dataset.values}
        for sc in ds.score.values
    }  # fmt: skip
    out["top10_change_share"] = {
        str(d): {str(_label(str(n))): float(mean(ds.top10_change_share).sel(dataset=d, network=n))
                 for n in ds.network.values} for d in ds.dataset.values
    }  # fmt: skip
    f = ds.sel(network=c.focus)
    out["sgd_test_accuracy"] = {str(d): float(mean(f.sgd_test_accuracy).sel(dataset=d))
                                for d in ds.dataset.values}  # fmt: skip
    out["sgd_train_accuracy"] = {str(d): float(mean(f.sgd_train_accuracy).sel(dataset=d))
                                 for d in ds.dataset.values}  # fmt: skip
    drop = f.sgd_test_accuracy - f.reinit_test_accuracy
    out["reinit_accuracy_drop"] = {
        str(d): {sc: {_key(k): {r: float(mean(drop).sel(dataset=d, score=sc, k=k, rule=r))
                                for r in RULES} for k in ds.k.values} for sc in ds.score.values}
        for d in ds.dataset.values
    }  # fmt: skip
    out["lws_test_accuracy"] = {str(d): {str(v): float(mean(ds.lws_test_accuracy).sel(
        dataset=d, variant=v)) for v in ds.variant.values} for d in ds.dataset.values}  # fmt: skip
    out["plws_test_accuracy"] = {str(d): {_key(p): float(mean(ds.plws_test_accuracy).sel(
        dataset=d, p=p)) for p in ds.p.values} for d in ds.dataset.values}  # fmt: skip
    out["plws_equal_time_test_accuracy"] = {str(d): {_key(p): float(mean(
        ds.plws_equal_time_test_accuracy).sel(dataset=d, p=p)) for p in ds.p.values}
        for d in ds.dataset.values}  # fmt: skip
    out["equal_time_steps"] = {str(d): {"sgd": int(ds.train_steps.sel(dataset=d)), **{
        _key(p): int(ds.equal_time_steps.sel(dataset=d, p=p)) for p in ds.p.values}}
        for d in ds.dataset.values}  # fmt: skip
    sgd = ds.sgd_step_seconds.mean("bracket")
    ratios = {"top-only": sgd / ds.top_step_seconds,
              **{f"plws {_key(p)}": sgd / ds.plws_step_seconds.sel(p=p) for p in ds.p.values},
              "null (SGD first / last)": ds.sgd_step_seconds.sel(bracket="first")
              / ds.sgd_step_seconds.sel(bracket="last")}  # fmt: skip
    out["step_time_ratio"] = {
        str(d): {name: {"median": float(r.sel(dataset=d).median()),
                        "min": float(r.sel(dataset=d).min()), "max": float(r.sel(dataset=d).max())}
                 for name, r in ratios.items()} for d in ds.dataset.values
    }  # fmt: skip
    out["sgd_step_seconds_median"] = {str(d): float(sgd.sel(dataset=d).median())
                                      for d in ds.dataset.values}  # fmt: skip
    out["plws_full_step_fraction"] = {_key(p): float(ds.plws_full_step_fraction.sel(p=p).mean())
                                      for p in ds.p.values}  # fmt: skip
    return out
