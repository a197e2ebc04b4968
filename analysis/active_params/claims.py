"""The claims of the active-params study (PAPERS.md §4), declared before any data.

`declare(config)` lists them from the options alone; `claims(ds, config)` measures each one
per unit of replication and judges it with `lazyrich.evidence` (90% interval over the units,
the one verdict rule). The unit is the seed: a seed's value is the statistic averaged over
datasets (and networks or k where the claim says so). The PLWS wall-time claims run over the
interleaved timing repeats instead (one machine, one seed: the timing's own replication).

Margins, in each claim's units, fixed here from the claims' wording (never from a result):
one point of test accuracy for "hurts" and "close to SGD", 0.05 of ‖Δθ‖² around "most" (one
half), 10% for an enrichment ratio against 1, and the paper's own 2–5× for the speed-up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from lazyrich import evidence
from lazyrich.evidence import Claim

from .config import RULES, Config
from .summary import bottom_enrichment

PAPER = "Li & Banerjee 2021 (arXiv 2102.13522)"
TOP_SHARE = 0.5  # "most" of ‖Δθ‖²: more than half
SHARE_MARGIN = 0.05
ACCURACY_MARGIN = 0.01  # one point of test accuracy
RATIO_MARGIN = 0.1  # an enrichment ratio within 10% of 1 is practically none
SPEEDUP = (2.0, 5.0)  # the paper's stated range
TOP_BOTTOM = "top+bottom"
FIG_SHARE = "figures/active_share_by_layer.png"
FIG_REINIT = "figures/reinit_accuracy.png"
FIG_LWS = "figures/lws_accuracy.png"


def _p(p: float) -> str:
    return f"{p:g}"


def declare(c: Config) -> list[Claim]:
    """The study's claims for config `c`, in the order `claims` measures them.

    **Arguments:**

    - `c`: the study's options (what is run decides which claims exist: one reset claim and
      two bottom-layer claims per activity score, the growth claim only with two MLP widths,
      the top + bottom claim only if that LWS variant runs, two PLWS claims per p).

    **Returns:** a list of `lazyrich.evidence.Claim`.
    """
    acc_reason = "one point of test accuracy: the claim's own precision ('within 1 point')"
    out = [
        Claim(
            id="few-parameters-carry-the-change", paper=PAPER,
            claim="a small fraction of parameters carries most of the change: the 10% of "
                  "parameters that changed most hold more than half of ‖θ_T − θ_0‖²",
            theory=TOP_SHARE, kind="above", margin=SHARE_MARGIN,
            reason="a share within 0.05 of one half is no clear majority; unconcentrated "
                   "(Gaussian) changes give 0.44, below that band",
            figure=FIG_SHARE, theory_text="share > 1/2",
        )
    ]  # fmt: skip
    for sc in c.scores:
        out.append(Claim(
            id=f"reset-active-hurts-most-{sc}", paper=PAPER,
            claim=f"resetting the active k% ({sc} score) to init lowers test accuracy more than "
                  "resetting any control k% (random, least-changed, layer- or magnitude-matched)",
            theory=0.0, kind="above", margin=ACCURACY_MARGIN,
            reason="one point of test accuracy: a smaller excess drop is practically no "
                   "difference between resets",
            figure=FIG_REINIT, theory_text="drop(active) − max drop(controls) > 0",
        ))  # fmt: skip
    for sc in c.scores:
        out.append(Claim(
            id=f"bottom-layers-{sc}", paper=PAPER,
            claim=f"active parameters ({sc} score) sit in the bottom layer: it holds a larger "
                  "share of them than of all parameters, at every MLP width",
            theory=1.0, kind="above", margin=RATIO_MARGIN,
            reason="an over-representation of less than 10% (ratio within 1 ± 0.1) is "
                   "practically none",
            figure=FIG_SHARE, theory_text="bottom enrichment > 1",
        ))  # fmt: skip
        if len(c.widths) >= 2:
            out.append(Claim(
                id=f"bottom-layers-wider-{sc}", paper=PAPER,
                claim=f"the bottom layer's enrichment in active parameters ({sc} score) grows "
                      "with width (widest MLP against narrowest)",
                theory=1.0, kind="above", margin=RATIO_MARGIN,
                reason="an enrichment changing by less than 10% from the narrowest to the "
                       "widest MLP is practically no growth",
                figure=FIG_SHARE, theory_text="enrichment(widest) / enrichment(narrowest) > 1",
            ))  # fmt: skip
    if TOP_BOTTOM in c.lws_variants:
        out.append(Claim(
            id="top-bottom-lws-close-to-sgd", paper=PAPER,
            claim="static LWS-SGD on the top and bottom layers generalises as well as SGD "
                  "(within 1 point of test accuracy)",
            theory=0.0, margin=ACCURACY_MARGIN, reason=acc_reason, figure=FIG_LWS,
            theory_text="acc(SGD) − acc(top+bottom) = 0",
        ))  # fmt: skip
    for p in c.plws_p:
        out.append(Claim(
            id=f"plws-close-to-sgd-p{_p(p)}", paper=PAPER,
            claim=f"probabilistic LWS-SGD with p = {_p(p)} matches SGD's test accuracy (within 1 "
                  "point)",
            theory=0.0, margin=ACCURACY_MARGIN, reason=acc_reason, figure=FIG_LWS,
            theory_text="acc(SGD) − acc(PLWS) = 0",
        ))  # fmt: skip
        lo, hi = SPEEDUP
        out.append(Claim(
            id=f"plws-cheaper-p{_p(p)}", paper=PAPER,
            claim=f"training with probabilistic LWS-SGD (p = {_p(p)}) is {lo:g}–{hi:g}× cheaper "
                  "than SGD at equal steps (wall time of the training steps)",
            theory=(lo + hi) / 2, margin=(hi - lo) / 2,
            reason=f"the paper's stated range, {lo:g}–{hi:g}×",
            unit="repeat", figure=FIG_LWS, theory_text=f"SGD time / PLWS time in [{lo:g}, {hi:g}]",
        ))  # fmt: skip
    return out


def _values(a: xr.DataArray) -> list[float]:
    return [float(v) for v in np.asarray(a.values, float).ravel()]


def per_unit(ds: xr.Dataset, c: Config) -> dict[str, tuple[list[float], str | None]]:
    """Per claim id: its per-unit values (one per seed, or per timing repeat) and a note.

    **Arguments:**

    - `ds`: the study's results (`results.nc`).
    - `c`: the study's options.

    **Returns:** `{id: (values, note)}` for every claim `declare(c)` lists; a unit that cannot
    be measured (an unmatched control) is NaN.
    """
    out: dict[str, tuple[list[float], str | None]] = {}
    share = ds.top10_change_share.mean(("dataset", "network"), skipna=False)
    out["few-parameters-carry-the-change"] = (
        _values(share),
        "per seed: share of ‖θ_T−θ_0‖² in the 10% most-changed parameters, mean over datasets "
        "and networks (Gaussian changes give 0.44)",
    )
    drop = ds.sgd_test_accuracy - ds.reinit_test_accuracy
    controls = [r for r in RULES if r != "active"]
    for sc in c.scores:
        d = drop.sel(score=sc)
        excess = d.sel(rule="active") - d.sel(rule=controls).max("rule", skipna=False)
        per_seed = excess.mean(("dataset", "network", "k"), skipna=False)
        out[f"reset-active-hurts-most-{sc}"] = (_values(per_seed), _reinit_note(d, controls))
    mlps = [n for n in ds.network.values if str(n).startswith("mlp-")]
    widths = [int(str(n).split("-")[1]) for n in mlps]
    wide, narrow = mlps[int(np.argmax(widths))], mlps[int(np.argmin(widths))]
    for sc in c.scores:
        e = bottom_enrichment(ds, sc).sel(network=mlps)
        ev = {int(str(n).split("-")[1]): round(float(e.sel(network=n).mean()), 3) for n in mlps}
        note = f"bottom enrichment by width (mean over datasets and seeds): {ev}"
        least = e.min(("network", "dataset"), skipna=False)  # per seed: at every width, dataset
        out[f"bottom-layers-{sc}"] = (
            _values(least),
            f"per seed: the smallest enrichment over MLP widths and datasets; {note}",
        )
        growth = (e.sel(network=wide) / e.sel(network=narrow)).mean("dataset", skipna=False)
        out[f"bottom-layers-wider-{sc}"] = (
            _values(growth),
            f"per seed: enrichment(mlp-{max(widths)}) / enrichment(mlp-{min(widths)}), mean "
            f"over datasets; {note}",
        )
    focus = ds.sel(network=c.focus)
    if TOP_BOTTOM in c.lws_variants:
        gap = focus.sgd_test_accuracy - ds.lws_test_accuracy.sel(variant=TOP_BOTTOM)
        per_dataset = {str(k): round(float(gap.sel(dataset=k).mean()), 4)
                       for k in ds.dataset.values}  # fmt: skip
        out["top-bottom-lws-close-to-sgd"] = (
            _values(gap.mean("dataset", skipna=False)),
            f"per seed: the gap on {c.focus}, mean over datasets; per dataset (mean over "
            f"seeds): {per_dataset}",
        )
    gap = focus.sgd_test_accuracy - ds.plws_test_accuracy
    ratio = ds.sgd_train_seconds / ds.plws_train_seconds  # interleaved repeat by repeat
    train = focus.sgd_train_accuracy.mean("seed")
    train_text = str({str(k): round(float(train.sel(dataset=k)), 4) for k in ds.dataset.values})
    for p in c.plws_p:
        g = gap.sel(p=p)
        out[f"plws-close-to-sgd-p{_p(p)}"] = (
            _values(g.mean("dataset", skipna=False)),
            f"per seed: the gap on {c.focus}, mean over datasets; SGD train accuracy per "
            f"dataset: {train_text}",
        )
        r = ratio.sel(p=p)
        out[f"plws-cheaper-p{_p(p)}"] = (
            _values(r),
            f"per timing repeat: SGD / PLWS wall time of the training steps on {c.focus} "
            f"({ds.attrs['timing_dataset']}, seed {c.seed}, one machine); median "
            f"{float(r.median()):.3g}, full-update fraction "
            f"{float(ds.plws_full_step_fraction.sel(p=p).mean()):.3g}",
        )
    return out


def claims(ds: xr.Dataset, c: Config) -> list[dict[str, Any]]:
    """The claims table: `lazyrich.evidence.judge` of each declared claim on its units.

    **Arguments:**

    - `ds`: the study's results (`results.nc`).
    - `c`: the study's options.

    **Returns:** one row per claim of `declare(c)`, in order (fields: the claim's, `measured`,
    `samples`, `verdict`, `rule`, `note`).
    """
    values = per_unit(ds, c)
    rows = []
    for claim in declare(c):
        samples, note = values.get(claim.id, ([], "not measured by this run"))
        rows.append(evidence.judge(claim, samples, note=note))
    return rows


def _reinit_note(d: xr.DataArray, controls: list[str]) -> str:
    means = {r: round(float(d.sel(rule=r).mean()), 4) for r in ["active", *controls]}
    text = (
        "per seed: accuracy drop of the active reset minus the largest control drop, mean over "
        f"datasets, networks and k; mean drop per rule (all datasets, networks, k, seeds): {means}"
    )
    bad = np.argwhere(np.isnan(d.sel(rule=controls).values))
    if bad.size:
        sub = d.sel(rule=controls)
        keep = ("network", "k", "rule")
        where = sorted({", ".join(f"{dim}={sub[dim].values[i]}"
                                  for dim, i in zip(sub.dims, row, strict=True) if dim in keep)
                        for row in bad})  # fmt: skip
        text += "; unmatched (more than half a stratum active; such a seed is not measured): "
        text += "; ".join(where)
    return text
