"""The headline numbers (summary.json) and the paper's claims of the active-params study.

Every claim's interval is the spread over seeds: the statistic is averaged over datasets (and
networks where it says so) per seed; `value` is the mean over seeds, `lo`/`hi` the smallest and
largest seed. The verdict rules are fixed here, before any run, and stated in each `rule`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ._config import RULES, Config

PAPER = "Li & Banerjee 2021 (arXiv 2102.13522)"
TOP_SHARE_THRESHOLD = 0.5  # claim 1: the top 10% carry more than half of ‖Δθ‖²
CLOSE = 0.01  # claims 4, 5: within 1 point of SGD's test accuracy
SPEEDUP = (2.0, 5.0)  # claim 5


def _key(v: float) -> str:
    return f"{v:g}"


def _label(network: str) -> str | int:
    return int(network.split("-", 1)[1]) if network.startswith("mlp-") else network


def _spread(per_seed: np.ndarray) -> dict[str, Any]:
    v = np.asarray(per_seed, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"value": None, "lo": None, "hi": None}
    return {"value": float(v.mean()), "lo": float(v.min()), "hi": float(v.max())}


def _threshold_verdict(m: dict, above: float) -> str:
    if m["lo"] is None:
        return "undecided"
    return "agrees" if m["lo"] > above else "disagrees" if m["hi"] < above else "undecided"


def bottom_enrichment(ds: xr.Dataset, score: str) -> xr.DataArray:
    """Bottom layer's share of the active set / its share of parameters, per (dataset, seed,
    network) under `score` (> 1: the bottom layer is over-represented among the active)."""
    size_share = ds.layer_size.isel(layer=0) / ds.layer_size.sum("layer")
    return ds.active_share.sel(score=score).isel(layer=0) / size_share


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see DESCRIPTION) and the claims."""
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
    ratio = ds.sgd_train_seconds / ds.plws_train_seconds  # interleaved repeat by repeat
    out["plws_wall_time_ratio"] = {
        _key(p): {"median": float(ratio.sel(p=p).median()), "min": float(ratio.sel(p=p).min()),
                  "max": float(ratio.sel(p=p).max())} for p in ds.p.values
    }  # fmt: skip
    out["sgd_train_seconds_median"] = float(ds.sgd_train_seconds.median())
    out["plws_full_step_fraction"] = {_key(p): float(ds.plws_full_step_fraction.sel(p=p).mean())
                                      for p in ds.p.values}  # fmt: skip
    out["claims"] = claims(ds, c)
    return out


def claims(ds: xr.Dataset, c: Config) -> list[dict[str, Any]]:
    """The five claims of §4 (claims 2 and 3 once per activity score)."""
    out: list[dict[str, Any]] = []
    m = _spread(ds.top10_change_share.mean(("dataset", "network")).values)
    out.append(dict(
        id="few-parameters-carry-the-change", paper=PAPER,
        claim="a small fraction of parameters carries most of the change",
        theory=f"top 10% of |Δw| hold > {TOP_SHARE_THRESHOLD} of ‖Δθ‖²", measured=m,
        verdict=_threshold_verdict(m, TOP_SHARE_THRESHOLD),
        rule=f"share of ‖θ_T−θ_0‖² in the 10% most-changed parameters, mean over datasets and "
             f"networks, per seed; agrees if every seed > {TOP_SHARE_THRESHOLD}, disagrees if "
             f"every seed < it (Gaussian changes give 0.44)",
        figure="figures/active_share_by_layer.png"))  # fmt: skip
    drop = ds.sgd_test_accuracy - ds.reinit_test_accuracy
    controls = [r for r in RULES if r != "active"]
    for sc in ds.score.values:
        d = drop.sel(score=sc)
        margin = d.sel(rule="active") - d.sel(rule=controls).max("rule", skipna=False)
        per_seed = margin.mean(("dataset", "network", "k")).values
        mm = _spread(per_seed)
        missing = bool(np.isnan(margin.values).any())
        out.append(dict(
            id=f"reset-active-hurts-most-{sc}", paper=PAPER,
            claim=f"resetting the active k% ({sc} score) hurts more than every control",
            theory="drop(active) − max drop(random, least, layer-matched, magnitude-matched) > 0",
            measured=mm, verdict="undecided" if missing else _threshold_verdict(mm, 0.0),
            rule="margin = accuracy drop of the active reset minus the largest control drop, mean "
                 "over datasets, networks and k, per seed; agrees if every seed > 0, disagrees if "
                 "every seed < 0; undecided if a control could not be matched",
            figure="figures/reinit_accuracy.png",
            note=_reinit_note(d, controls)))  # fmt: skip
    mlps = [n for n in ds.network.values if str(n).startswith("mlp-")]
    widths = [int(str(n).split("-")[1]) for n in mlps]
    wide, narrow = mlps[int(np.argmax(widths))], mlps[int(np.argmin(widths))]
    for sc in ds.score.values:
        e = bottom_enrichment(ds, sc).sel(network=mlps)
        growth = (e.sel(network=wide) / e.sel(network=narrow)).mean("dataset").values
        bottom = (e.min("network") > 1).all("dataset").values  # per seed: enriched at all widths
        mg = _spread(growth)
        if mg["lo"] is None or len(mlps) < 2:
            verdict = "undecided"
        elif mg["lo"] > 1 and bool(bottom.all()):
            verdict = "agrees"
        elif mg["hi"] < 1 or not bool(bottom.any()):
            verdict = "disagrees"
        else:
            verdict = "undecided"
        ev = {int(str(n).split("-")[1]): round(float(e.sel(network=n).mean()), 3) for n in mlps}
        out.append(dict(
            id=f"bottom-layers-wider-{sc}", paper=PAPER,
            claim=f"active parameters ({sc} score) sit in the bottom layer, more so when wider",
            theory="bottom enrichment > 1 at every width and growing with width (ratio > 1)",
            measured=mg, verdict=verdict,
            rule=f"bottom enrichment = bottom layer's share of the top {c.active_percent:g}% / its "
                 "share of parameters; measured: enrichment(widest) / enrichment(narrowest), mean "
                 "over datasets, per seed; agrees if every seed's ratio > 1 and enrichment > 1 at "
                 "every width, dataset and seed; disagrees if every seed's ratio < 1 or no seed "
                 "has enrichment > 1 throughout",
            figure="figures/active_share_by_layer.png",
            note=f"bottom enrichment by width (mean over datasets and seeds): {ev}"))  # fmt: skip
    focus = ds.sel(network=c.focus)
    if "top+bottom" in ds.variant.values:
        gap = focus.sgd_test_accuracy - ds.lws_test_accuracy.sel(variant="top+bottom")
        mt = _spread(gap.mean("dataset").values)
        verdict = ("undecided" if mt["lo"] is None else "agrees" if mt["hi"] <= CLOSE
                   else "disagrees" if mt["lo"] > CLOSE else "undecided")  # fmt: skip
        out.append(dict(
            id="top-bottom-lws-close-to-sgd", paper=PAPER,
            claim="static LWS on top + bottom layers generalises within 1 point of SGD",
            theory=f"acc(SGD) − acc(top+bottom) ≤ {CLOSE}", measured=mt, verdict=verdict,
            rule=f"gap on {c.focus}, mean over datasets, per seed; agrees if every seed's gap ≤ "
                 f"{CLOSE}, disagrees if every seed's gap > {CLOSE}",
            figure="figures/lws_accuracy.png",
            note="gap per dataset (mean over seeds): " + str({str(k): round(float(
                gap.sel(dataset=k).mean()), 4) for k in ds.dataset.values})))  # fmt: skip
    out.append(_plws_claim(ds, focus))
    return out


def _reinit_note(d: xr.DataArray, controls: list[str]) -> str:
    means = {r: round(float(d.sel(rule=r).mean()), 4) for r in ["active", *controls]}
    text = f"mean accuracy drop per rule (all datasets, networks, k, seeds): {means}"
    bad = np.argwhere(np.isnan(d.sel(rule=controls).values))
    if bad.size:
        sub = d.sel(rule=controls)
        keep = ("network", "k", "rule")
        where = sorted({", ".join(f"{dim}={sub[dim].values[i]}"
                                  for dim, i in zip(sub.dims, row, strict=True) if dim in keep)
                        for row in bad})  # fmt: skip
        text += f"; unmatched (more than half a stratum active): {'; '.join(where)}"
    return text


def _plws_claim(ds: xr.Dataset, focus: xr.Dataset) -> dict[str, Any]:
    gap = (focus.sgd_test_accuracy - ds.plws_test_accuracy).mean(("dataset", "seed"))
    ok = [float(p) for p in ds.p.values if float(gap.sel(p=p)) <= CLOSE]
    ratio = ds.sgd_train_seconds / ds.plws_train_seconds
    if ok:
        p = min(ok)
        r = ratio.sel(p=p)
        m = {"value": float(r.median()), "lo": float(r.min()), "hi": float(r.max())}
        lo, hi = SPEEDUP
        verdict = ("agrees" if lo <= m["lo"] and m["hi"] <= hi
                   else "disagrees" if m["hi"] < lo or m["lo"] > hi else "undecided")  # fmt: skip
        note = f"p = {p:g} (smallest p within {CLOSE} of SGD); accuracy gap per p: " + str(
            {f"{float(q):g}": round(float(gap.sel(p=q)), 4) for q in ds.p.values}
        )
    else:
        r = ratio.isel(p=0)
        m = {"value": float(r.median()), "lo": float(r.min()), "hi": float(r.max())}
        verdict = "disagrees"
        note = "no p matched SGD's accuracy within 1 point: " + str(
            {f"{float(q):g}": round(float(gap.sel(p=q)), 4) for q in ds.p.values}
        )
    train = focus.sgd_train_accuracy.mean("seed")
    note += "; SGD train accuracy per dataset: " + str(
        {str(k): round(float(train.sel(dataset=k)), 4) for k in ds.dataset.values}
    )
    return dict(
        id="plws-matches-sgd-cheaper", paper=PAPER,
        claim="PLWS matches SGD's accuracy with 2–5× cheaper training",
        theory=f"wall-time ratio SGD / PLWS in [{SPEEDUP[0]:g}, {SPEEDUP[1]:g}] at equal accuracy",
        measured=m, verdict=verdict,
        rule=f"p = the smallest p whose accuracy (mean over datasets and seeds) is within {CLOSE} "
             "of SGD; measured: median and range of the interleaved repeats' wall-time ratio on "
             f"the focus network of {ds.attrs['timing_dataset']}; agrees if the range is inside "
             f"[{SPEEDUP[0]:g}, {SPEEDUP[1]:g}], disagrees if entirely outside or no p matches",
        figure="figures/lws_accuracy.png", note=note)  # fmt: skip
