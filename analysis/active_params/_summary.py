"""The headline numbers (summary.json) and the paper's claims of the active-params study."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ._config import RULES, Config


def _key(v: float) -> str:
    return f"{v:g}"


def _label(network: str) -> str | int:
    return int(network.split("-", 1)[1]) if network.startswith("mlp-") else network


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see DESCRIPTION) and which paper claims hold."""
    out: dict[str, Any] = {"dataset": c.dataset, "focus": c.focus, "steps": int(ds.attrs["steps"])}
    frac, share, bottom_size = {}, {}, {}
    for name in ds.network.values:
        r = ds.sel(network=name)
        size = r.layer_size.values
        ok = np.isfinite(size)
        frac[_label(str(name))] = [float(v) for v in r.active_fraction.values[ok]]
        share[_label(str(name))] = [float(v) for v in r.active_share.values[ok]]
        bottom_size[_label(str(name))] = float(size[0] / size[ok].sum())
    out["active_fraction_by_layer"] = frac
    out["active_share_by_layer"] = share
    out["active_share_bottom_layer"] = {k: v[0] for k, v in share.items()}
    out["bottom_size_share"] = bottom_size
    out["bottom_enrichment"] = {  # > 1: the bottom layer holds more than its share of active
        k: v[0] / bottom_size[k] for k, v in share.items()
    }
    f = ds.sel(network=c.focus)
    trained = float(f.sgd_test_accuracy)
    out["init_test_accuracy"] = float(f.init_test_accuracy)
    out["sgd_test_accuracy"] = trained
    out["sgd_train_accuracy"] = float(f.sgd_train_accuracy)
    out["reinit_test_accuracy"] = {
        _key(k): {rule: float(f.reinit_test_accuracy.sel(k=k, rule=rule)) for rule in RULES}
        for k in ds.k.values
    }
    out["reinit_accuracy_drop"] = {
        k: {rule: trained - acc for rule, acc in v.items()}
        for k, v in out["reinit_test_accuracy"].items()
    }
    out["lws_test_accuracy"] = {
        str(v): float(ds.lws_test_accuracy.sel(variant=v)) for v in ds.variant.values
    }
    out["plws_test_accuracy"] = {_key(p): float(ds.plws_test_accuracy.sel(p=p)) for p in ds.p}
    sgd_s = float(ds.sgd_train_seconds.min())  # the shortest of the repeats
    out["sgd_train_seconds"] = sgd_s
    out["plws_train_seconds"] = {_key(p): float(ds.plws_train_seconds.sel(p=p).min()) for p in ds.p}
    out["plws_backprop_speedup"] = {k: sgd_s / v for k, v in out["plws_train_seconds"].items()}
    out["plws_full_step_fraction"] = {
        _key(p): float(ds.plws_full_step_fraction.sel(p=p)) for p in ds.p
    }
    out["paper_claims"] = paper_claims(out, c)
    return out


def paper_claims(s: dict, c: Config) -> dict:
    """Which of the paper's expectations hold in this run (None where not measured)."""
    claims: dict[str, Any] = {}
    mlps = sorted(k for k in s["active_fraction_by_layer"] if isinstance(k, int))
    claims["bottom_layer_highest_active_fraction"] = {
        w: bool(np.argmax(s["active_fraction_by_layer"][w]) == 0) for w in mlps
    }
    bottom = [s["active_share_bottom_layer"][w] for w in mlps]
    claims["bottom_share_grows_with_width"] = (
        bool(all(b2 >= b1 for b1, b2 in zip(bottom, bottom[1:], strict=False)))
        if len(mlps) > 1
        else None
    )
    claims["bottom_share_exceeds_size_share"] = {
        w: bool(s["active_share_bottom_layer"][w] > s["bottom_size_share"][w]) for w in mlps
    }
    enrichment = [s["bottom_enrichment"][w] for w in mlps]
    claims["bottom_enrichment_grows_with_width"] = (
        bool(all(b2 >= b1 for b1, b2 in zip(enrichment, enrichment[1:], strict=False)))
        if len(mlps) > 1
        else None
    )
    claims["reset_active_hurts_more_than_random"] = {
        k: bool(d["active"] > max(2 * d["random"], d["random"] + 0.01))
        for k, d in s["reinit_accuracy_drop"].items()
    }
    claims["reset_rule"] = "drop(active) > max(2 * drop(random), drop(random) + 0.01)"
    sgd = s["sgd_test_accuracy"]
    tb = s["lws_test_accuracy"].get("top+bottom")
    claims["top_bottom_close_to_sgd"] = None if tb is None else bool(abs(tb - sgd) <= c.close_tol)
    claims["top_bottom_rule"] = f"|acc(top+bottom) - acc(SGD)| <= {c.close_tol}"
    claims["plws_within_1pct_of_sgd"] = {
        p: bool(sgd - acc <= 0.01) for p, acc in s["plws_test_accuracy"].items()
    }
    claims["plws_speedup_2x_or_more"] = {
        p: bool(v >= 2.0) for p, v in s["plws_backprop_speedup"].items()
    }
    return claims
