"""The claims of the active-params study (PAPERS.md §4), declared before any data.

`declare(config)` lists them from the options alone; `claims(ds, config)` measures each one
per unit of replication and judges it with `lazyrich.evidence` (90% interval over the units,
the one verdict rule). The unit is the seed: a seed's value is the statistic averaged over
datasets (and networks or k where the claim says so). The wall-time claims run over the
interleaved timing repeats instead (one machine, one seed: the timing's own replication; a
repeat's value is its ratio of per-step times, averaged over datasets).

Controls are rows of their own, next to the claim they control: each reset control against the
active reset, top-only LWS (a sparse variant that should fall short) next to top + bottom LWS,
and the null timing (SGD against SGD in the same repeat) next to the speed claims.

Margins, in each claim's units, fixed here from the claims' wording (never from a result):
one point of test accuracy for "hurts" and "close to SGD", 0.05 of ‖Δθ‖² around "most" (one
half), 10% for an enrichment ratio against 1, the paper's own 2–5× for the speed-up (so "fast"
is a step at least 2× cheaper than SGD's), and a tenth of that 1 → 2 gap for the null timing.
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
NULL_MARGIN = 0.1  # a tenth of the gap between no saving (1×) and the paper's 2×
TOP_BOTTOM = "top+bottom"
TOP = "top"
CONTROLS = tuple(r for r in RULES if r != "active")
FIG_SHARE = "figures/active_share_by_layer.png"
FIG_REINIT = "figures/reinit_accuracy.png"
FIG_LWS = "figures/lws_accuracy.png"


def _p(p: float) -> str:
    return f"{p:g}"


def declare(c: Config) -> list[Claim]:
    """The study's claims for config `c`, in the order `claims` measures them.

    **Arguments:**

    - `c`: the study's options (what is run decides which claims exist: per activity score
      one reset claim, one control row per reset control and two bottom-layer claims (the
      growth claim only with two MLP widths); the top + bottom claim and its top-only control
      only if those LWS variants run; the top-only speed claim and its null timing control;
      three PLWS claims per p).

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
    hurt_reason = ("one point of test accuracy: a smaller excess drop is practically no "
                   "difference between resets")  # fmt: skip
    for sc in c.scores:
        out.append(Claim(
            id=f"reset-active-hurts-most-{sc}", paper=PAPER,
            claim=f"resetting the active k% ({sc} score) to init lowers test accuracy more than "
                  "resetting any control k% (random, least-changed, layer- or magnitude-matched; "
                  "per network and k, the largest drop among the controls that can be drawn)",
            theory=0.0, kind="above", margin=ACCURACY_MARGIN, reason=hurt_reason,
            figure=FIG_REINIT, theory_text="drop(active) − max drop(controls) > 0",
        ))  # fmt: skip
        for rule in CONTROLS:
            out.append(Claim(
                id=f"reset-active-vs-{rule}-{sc}", paper=PAPER,
                claim=f"control: resetting the active k% ({sc} score) lowers test accuracy more "
                      f"than resetting the {rule} k% (over the networks and k where that "
                      "control can be drawn)",
                theory=0.0, kind="above", margin=ACCURACY_MARGIN, reason=hurt_reason,
                figure=FIG_REINIT, theory_text=f"drop(active) − drop({rule}) > 0",
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
        if TOP in c.lws_variants:
            out.append(Claim(
                id="top-lws-below-sgd", paper=PAPER,
                claim="control: static top-only LWS-SGD (the lower layers stay at init) falls "
                      "more than 1 point below SGD, so the comparison can tell a sparse variant "
                      "that falls short from one that does not",
                theory=0.0, kind="above", margin=ACCURACY_MARGIN,
                reason="one point of test accuracy, the precision of 'close to SGD'",
                figure=FIG_LWS, theory_text="acc(SGD) − acc(top) > 0",
            ))  # fmt: skip
    lo, hi = SPEEDUP
    out.append(Claim(
        id="top-lws-fast", paper=PAPER,
        claim=f"top-only LWS-SGD ({c.plws_top} layers, backward pass truncated below them) is "
              f"fast: its training step is at least {lo:g}× cheaper than an SGD step "
              "(per-step wall time)",
        theory=1.0, kind="above", margin=lo - 1.0,
        reason=f"the paper's PLWS, mostly top-only steps, is {lo:g}–{hi:g}× cheaper than SGD, "
               f"so 'fast' means a step at least {lo:g}× cheaper; 1× is no saving",
        unit="repeat", figure=FIG_LWS, theory_text=f"SGD step time / top-only step time > {lo:g}",
    ))  # fmt: skip
    out.append(Claim(
        id="timing-null-sgd-vs-sgd", paper=PAPER,
        claim="control: two identical SGD trainings timed in the same repeat (first and last) "
              "take the same time per step (the timing resolves the speed-up claims)",
        theory=1.0, margin=NULL_MARGIN,
        reason=f"a tenth of the gap between no saving (1×) and the paper's {lo:g}× lower end",
        unit="repeat", figure=FIG_LWS, theory_text="SGD time (first) / SGD time (last) = 1",
    ))  # fmt: skip
    for p in c.plws_p:
        out.append(Claim(
            id=f"plws-close-to-sgd-p{_p(p)}", paper=PAPER,
            claim=f"probabilistic LWS-SGD with p = {_p(p)} matches SGD's test accuracy at equal "
                  "steps (within 1 point)",
            theory=0.0, margin=ACCURACY_MARGIN, reason=acc_reason, figure=FIG_LWS,
            theory_text="acc(SGD) − acc(PLWS, same steps) = 0",
        ))  # fmt: skip
        out.append(Claim(
            id=f"plws-equal-time-p{_p(p)}", paper=PAPER,
            claim=f"probabilistic LWS-SGD with p = {_p(p)}, given the steps that fit in SGD's "
                  "wall time, matches SGD's test accuracy (within 1 point)",
            theory=0.0, margin=ACCURACY_MARGIN, reason=acc_reason, figure=FIG_LWS,
            theory_text="acc(SGD) − acc(PLWS, same wall time) = 0",
        ))  # fmt: skip
        out.append(Claim(
            id=f"plws-cheaper-p{_p(p)}", paper=PAPER,
            claim=f"a probabilistic LWS-SGD step (p = {_p(p)}) is {lo:g}–{hi:g}× cheaper than "
                  "an SGD step (per-step wall time)",
            theory=(lo + hi) / 2, margin=(hi - lo) / 2,
            reason=f"the paper's stated range, {lo:g}–{hi:g}×",
            unit="repeat", figure=FIG_LWS,
            theory_text=f"SGD step time / PLWS step time in [{lo:g}, {hi:g}]",
        ))  # fmt: skip
    return out


def _values(a: xr.DataArray) -> list[float]:
    return [float(v) for v in np.asarray(a.values, float).ravel()]


def _medians(a: xr.DataArray) -> str:
    """Per dataset, the median over repeats, as text."""
    return str({str(d): round(float(a.sel(dataset=d).median()), 3) for d in a.dataset.values})


def step_ratios(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per-step wall-time ratios per (dataset, repeat): `"top"` (SGD / top-only LWS), `"plws"`
    (SGD / PLWS, with p) and `"null"` (first SGD timing / last SGD timing of the repeat); SGD's
    time in a repeat is the mean of its two bracketing timings."""
    sgd = ds.sgd_step_seconds.mean("bracket")
    return {
        "top": sgd / ds.top_step_seconds,
        "plws": sgd / ds.plws_step_seconds,
        "null": ds.sgd_step_seconds.sel(bracket="first") / ds.sgd_step_seconds.sel(bracket="last"),
    }


def per_unit(ds: xr.Dataset, c: Config) -> dict[str, tuple[list[float], str | None]]:
    """Per claim id: its per-unit values (one per seed, or per timing repeat) and a note.

    **Arguments:**

    - `ds`: the study's results (`results.nc`).
    - `c`: the study's options.

    **Returns:** `{id: (values, note)}` for every claim `declare(c)` lists; a unit that cannot
    be measured (a control never drawn) is NaN.
    """
    out: dict[str, tuple[list[float], str | None]] = {}
    share = ds.top10_change_share.mean(("dataset", "network"), skipna=False)
    out["few-parameters-carry-the-change"] = (
        _values(share),
        "per seed: share of ‖θ_T−θ_0‖² in the 10% most-changed parameters, mean over datasets "
        "and networks (Gaussian changes give 0.44)",
    )
    drop = ds.sgd_test_accuracy - ds.reinit_test_accuracy
    cells = ("dataset", "network", "k")
    for sc in c.scores:
        d = drop.sel(score=sc)
        # per cell, the largest drop among the controls drawn there (random and least always are)
        excess = d.sel(rule="active") - d.sel(rule=list(CONTROLS)).max("rule", skipna=True)
        out[f"reset-active-hurts-most-{sc}"] = (
            _values(excess.mean(cells, skipna=False)),
            _reinit_note(d),
        )
        for rule in CONTROLS:
            diff = d.sel(rule="active") - d.sel(rule=rule)
            drawn = np.isfinite(diff).all("seed")  # a cell is used if drawn for every seed
            per_seed = diff.where(drawn).mean(cells, skipna=True)
            n_cells, n_all = int(drawn.sum()), int(drawn.size)
            out[f"reset-active-vs-{rule}-{sc}"] = (
                _values(per_seed),
                f"per seed: drop(active) − drop({rule}), mean over the {n_cells} of {n_all} "
                "(dataset, network, k) cells where the control is drawn for every seed",
            )
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
    for variant, cid in ((TOP_BOTTOM, "top-bottom-lws-close-to-sgd"), (TOP, "top-lws-below-sgd")):
        if variant not in c.lws_variants:
            continue
        gap = focus.sgd_test_accuracy - ds.lws_test_accuracy.sel(variant=variant)
        per_dataset = {str(k): round(float(gap.sel(dataset=k).mean()), 4)
                       for k in ds.dataset.values}  # fmt: skip
        out[cid] = (
            _values(gap.mean("dataset", skipna=False)),
            f"per seed: the gap on {c.focus}, mean over datasets; per dataset (mean over "
            f"seeds): {per_dataset}",
        )
    r = step_ratios(ds)
    steps = {str(d): int(ds.timing_steps.sel(dataset=d)) for d in ds.dataset.values}
    where = (f"on {c.focus} (seed {c.seed}, one machine; steps per timed training {steps}); "
             "per-dataset medians over repeats")  # fmt: skip
    out["top-lws-fast"] = (
        _values(r["top"].mean("dataset", skipna=False)),
        f"per timing repeat: SGD / top-only LWS per-step time, mean over datasets, {where}: "
        f"{_medians(r['top'])}",
    )
    out["timing-null-sgd-vs-sgd"] = (
        _values(r["null"].mean("dataset", skipna=False)),
        f"per timing repeat: first / last SGD per-step time, mean over datasets, {where}: "
        f"{_medians(r['null'])}",
    )
    gap = focus.sgd_test_accuracy - ds.plws_test_accuracy
    gap_eq = focus.sgd_test_accuracy - ds.plws_equal_time_test_accuracy
    train = focus.sgd_train_accuracy.mean("seed")
    train_text = str({str(k): round(float(train.sel(dataset=k)), 4) for k in ds.dataset.values})
    for p in c.plws_p:
        out[f"plws-close-to-sgd-p{_p(p)}"] = (
            _values(gap.sel(p=p).mean("dataset", skipna=False)),
            f"per seed: the gap on {c.focus} at equal steps, mean over datasets; SGD train "
            f"accuracy per dataset: {train_text}",
        )
        eq = {
            str(d): f"{int(ds.equal_time_steps.sel(dataset=d, p=p))} vs "
            f"{int(ds.train_steps.sel(dataset=d))}"
            for d in ds.dataset.values
        }
        out[f"plws-equal-time-p{_p(p)}"] = (
            _values(gap_eq.sel(p=p).mean("dataset", skipna=False)),
            f"per seed: the gap on {c.focus} with PLWS given SGD's wall time, mean over "
            f"datasets; PLWS steps vs SGD steps per dataset {eq} (SGD steps × median SGD "
            "step time / median PLWS step time, from the interleaved timing repeats)",
        )
        rp = r["plws"].sel(p=p)
        out[f"plws-cheaper-p{_p(p)}"] = (
            _values(rp.mean("dataset", skipna=False)),
            f"per timing repeat: SGD / PLWS per-step time, mean over datasets, {where}: "
            f"{_medians(rp)}; full-update fraction "
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


def _reinit_note(d: xr.DataArray) -> str:
    controls = list(CONTROLS)
    means = {r: round(float(d.sel(rule=r).mean()), 4) for r in ["active", *controls]}
    text = (
        "per seed: accuracy drop of the active reset minus the largest drop among the controls "
        "drawn in that (dataset, network, k) cell, mean over the cells; mean drop per rule (all "
        f"datasets, networks, k, seeds): {means}"
    )
    bad = np.argwhere(np.isnan(d.sel(rule=controls).values))
    if bad.size:
        sub = d.sel(rule=controls)
        keep = ("network", "k", "rule")
        where = sorted({", ".join(f"{dim}={sub[dim].values[i]}"
                                  for dim, i in zip(sub.dims, row, strict=True) if dim in keep)
                        for row in bad})  # fmt: skip
        text += "; not drawn (more than half a stratum active; left out of that cell's max): "
        text += "; ".join(where)
    return text
