"""The active-params study: a tiny end-to-end run, oracles for its re-initialisation and its
LWS/PLWS training loops, and its one-line errors (exit code 2)."""

import dataclasses
import json
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

from analysis import active_params as ap
from analysis.cli import main
from lazyrich import evidence, functional
from lazyrich.measures._active import activity, reset, select_active, select_least
from lazyrich.optim import PLWS, layer_mask, masked
from lazyrich.train import Grid

TINY = [
    "--n-train", "200", "--n-test", "100", "--widths", "16", "--depth", "2",
    "--cnn-width", "2", "--focus", "mlp-16", "--epochs", "2", "--batch", "20", "--lr", "0.2",
    "--reinit-percents", "1", "50", "--plws-p", "0", "1", "--timing-repeats", "2",
    "--n-seeds", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "active-params", *TINY, "--out", str(out)]) == 0
    return out / "active-params"


def _config(run_dir) -> ap.Config:
    config = json.loads((run_dir / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(ap.Config)}
    kw: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in fields
    }
    return ap.Config(**kw)


def test_end_to_end(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    assert list(ds.network.values) == ["mlp-16", "cnn"]
    assert list(ds.score.values) == ["relative", "absolute", "layer"]
    assert list(ds.seed.values) == [0, 1]
    # (dataset, seed, network, score, layer): MLP depth 2 → 3 layers, padded to the CNN's 4
    assert ds.active_fraction.shape == (1, 2, 2, 3, 4)
    assert np.isnan(ds.active_fraction.values[0, :, 0, :, 3]).all()
    np.testing.assert_array_equal(ds.layer_size.values[0, 0, :3], [640, 256, 160])
    # shares sum to one; the active count is 5% of all parameters, under every score
    np.testing.assert_allclose(np.nansum(ds.active_share.values, axis=-1), 1.0, rtol=1e-6)
    active = np.nansum(ds.active_fraction.values * ds.layer_size.values[:, None, :, None], -1)
    total = np.nansum(ds.layer_size.values, axis=-1)
    np.testing.assert_array_equal(active, np.broadcast_to(np.round(total * 0.05)[:, None, :, None],
                                                          active.shape))  # fmt: skip
    # the seeds differ (initialisation and batch order)
    assert not np.allclose(ds.sgd_test_accuracy.values[0, 0], ds.sgd_test_accuracy.values[0, 1])

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["study"] == "active-params"
    e = summary["bottom_enrichment"]["relative"]["mnist1d"]["16"]
    share = float(ds.active_share.sel(score="relative", network="mlp-16", layer=0).mean())
    assert e == pytest.approx(share / (640 / (640 + 256 + 160)), rel=1e-6)
    drop = summary["reinit_accuracy_drop"]["mnist1d"]["relative"]
    assert set(drop) == {"1", "50"} and set(drop["1"]) == set(ap.RULES)
    sgd = summary["sgd_test_accuracy"]["mnist1d"]
    # same steps, same batches: "all" layers and p = 1 are SGD, p = 0 is top-only LWS
    tol = 1.01 / 100
    lws, plws = summary["lws_test_accuracy"]["mnist1d"], summary["plws_test_accuracy"]["mnist1d"]
    assert lws["all"] == pytest.approx(sgd, abs=tol)
    assert plws["1"] == pytest.approx(sgd, abs=tol)
    assert plws["0"] == pytest.approx(lws["top"], abs=tol)
    assert summary["plws_full_step_fraction"] == {"0": 0.0, "1": 1.0}
    ratio = summary["step_time_ratio"]["mnist1d"]["plws 1"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"] and ratio["min"] > 0
    assert ds.plws_step_seconds.shape == (1, 2, 2) and ds.sgd_step_seconds.shape == (1, 2, 2)
    for name in ("sgd_step_seconds", "top_step_seconds", "plws_step_seconds"):
        assert (ds[name].values > 0).all()
    ids = [c["id"] for c in summary["claims"]]
    assert ids == [c.id for c in ap.declare(_config(tiny_run))]
    assert "bottom-layers-layer" in ids and "plws-cheaper-p1" in ids  # one width: no growth
    # the controls are rows, next to the claims they control
    assert ids.index("reset-active-vs-random-relative") == ids.index(
        "reset-active-hurts-most-relative") + 1  # fmt: skip
    assert ids.index("top-lws-below-sgd") == ids.index("top-bottom-lws-close-to-sgd") + 1
    assert ids.index("timing-null-sgd-vs-sgd") == ids.index("top-lws-fast") + 1
    assert {c["verdict"] for c in summary["claims"]} == {"smoke"}  # the quick preset
    for fig in ("active_share_by_layer", "reinit_accuracy", "lws_accuracy"):
        assert (tiny_run / "figures" / f"{fig}.png").stat().st_size > 1000
    assert main(["report", "--out", str(tiny_run.parent)]) == 0  # the report takes the rows
    assert "active-params/figures/reinit_accuracy.png" in (
        tiny_run.parent / "report.html"
    ).read_text(encoding="utf-8")


def test_claims_are_measured_over_seeds(tiny_run):
    """Each claim's per-unit values are the per-seed (or per-repeat) statistic of results.nc;
    its interval is computed from them (units.nc re-derives the summary's rows)."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    c = _config(tiny_run)
    rows = {r["id"]: r for r in ap.claims(ds, c)}
    declared = ap.declare(c)
    assert list(rows) == [d.id for d in declared]
    share = ds.top10_change_share.values  # (dataset, seed, network)
    assert rows["few-parameters-carry-the-change"]["samples"] == pytest.approx(
        share.mean(axis=(0, 2)).tolist(), rel=1e-12)  # fmt: skip
    assert rows["few-parameters-carry-the-change"]["measured"]["n"] == 2  # two seeds
    sgd_s = ds.sgd_step_seconds.values[0]  # (bracket, repeat) of the one dataset
    ratio = sgd_s.mean(0) / ds.plws_step_seconds.sel(p=1.0).values[0]
    assert rows["plws-cheaper-p1"]["samples"] == pytest.approx(ratio.tolist(), rel=1e-12)
    assert rows["plws-cheaper-p1"]["unit"] == "repeat"
    top = sgd_s.mean(0) / ds.top_step_seconds.values[0]
    assert rows["top-lws-fast"]["samples"] == pytest.approx(top.tolist(), rel=1e-12)
    assert rows["timing-null-sgd-vs-sgd"]["samples"] == pytest.approx(
        (sgd_s[0] / sgd_s[1]).tolist(), rel=1e-12)  # fmt: skip
    eq = ds.sel(network="mlp-16").sgd_test_accuracy - ds.plws_equal_time_test_accuracy
    assert rows["plws-equal-time-p0"]["samples"] == pytest.approx(
        eq.sel(p=0.0).values.mean(0).tolist(), rel=1e-12)  # fmt: skip
    sgd = ds.sgd_test_accuracy.sel(network="mlp-16").values
    lws = ds.lws_test_accuracy.sel(variant="top+bottom").values
    assert rows["top-bottom-lws-close-to-sgd"]["samples"] == pytest.approx(
        (sgd - lws).mean(0).tolist(), rel=1e-12)  # fmt: skip
    e = ds.active_share.sel(score="layer", network="mlp-16", layer=0) / (640 / 1056)
    assert rows["bottom-layers-layer"]["samples"] == pytest.approx(e.values.min(0).tolist())
    # k = 50% cannot be matched: that cell's max runs over the controls drawn (random and
    # least always are); the matched control's own row leaves the cell out, and says so
    drop = ds.sgd_test_accuracy - ds.reinit_test_accuracy.sel(score="relative")
    assert np.isnan(drop.sel(k=50.0, rule="layer-matched")).all()
    controls = [r for r in ap.RULES if r != "active"]
    excess = drop.sel(rule="active") - drop.sel(rule=controls).max("rule")
    reset = rows["reset-active-hurts-most-relative"]
    assert reset["samples"] == pytest.approx(
        excess.mean(("dataset", "network", "k")).values.tolist(), rel=1e-12)  # fmt: skip
    assert reset["measured"]["n"] == 2 and "not drawn" in reset["note"]
    assert "k=50.0" in reset["note"]
    vs = drop.sel(rule="active") - drop.sel(rule="layer-matched")
    assert np.isfinite(vs.sel(k=1.0)).all() and np.isnan(vs.sel(k=50.0)).all()
    row = rows["reset-active-vs-layer-matched-relative"]
    assert row["samples"] == pytest.approx(  # only k = 1% is drawn for every seed
        vs.sel(k=1.0).mean(("dataset", "network")).values.tolist(), rel=1e-12)  # fmt: skip
    assert "where the control is drawn" in row["note"]
    for claim in declared:  # the interval comes from the per-unit samples
        row = rows[claim.id]
        assert evidence.measure(claim, row["samples"]).as_dict() == row["measured"]
        assert row["margin"] == claim.margin and row["reason"] == claim.reason
    units = evidence.read_units(tiny_run / evidence.UNITS_FILE)
    summary = json.loads((tiny_run / "summary.json").read_text())
    for row in summary["claims"]:
        np.testing.assert_allclose(units[row["id"]], rows[row["id"]]["samples"], rtol=1e-12)
        assert "samples" not in row and row["measured"]["n"] == rows[row["id"]]["measured"]["n"]


def test_declare_follows_the_options():
    c = ap.PRESETS["evidence"]
    ids = [d.id for d in ap.declare(c)]
    # few; per score a reset claim and its 4 controls; 2 bottom claims per score; top+bottom
    # and its top-only control; top-only speed and its null timing; 3 claims per p
    assert len(ids) == len(set(ids)) == 1 + 3 * 5 + 6 + 2 + 2 + 2 * 3
    one = dataclasses.replace(c, widths=(64,), focus="mlp-64", scores=("absolute",),
                              lws_variants=("top",), plws_p=(0.5,))  # fmt: skip
    assert [d.id for d in ap.declare(one)] == [
        "few-parameters-carry-the-change", "reset-active-hurts-most-absolute",
        "reset-active-vs-random-absolute", "reset-active-vs-least-absolute",
        "reset-active-vs-layer-matched-absolute", "reset-active-vs-magnitude-matched-absolute",
        "bottom-layers-absolute", "top-lws-fast", "timing-null-sgd-vs-sgd",
        "plws-close-to-sgd-p0.5", "plws-equal-time-p0.5", "plws-cheaper-p0.5",
    ]  # fmt: skip
    by_id = {d.id: d for d in ap.declare(one)}
    assert by_id["plws-cheaper-p0.5"].region == (2.0, 5.0)
    assert by_id["top-lws-fast"].region == (2.0, np.inf)  # "fast": at least the paper's 2x
    assert by_id["timing-null-sgd-vs-sgd"].region == pytest.approx((0.9, 1.1))
    assert {by_id[k].unit for k in ("plws-cheaper-p0.5", "top-lws-fast",
                                    "timing-null-sgd-vs-sgd")} == {"repeat"}  # fmt: skip


def test_sizing_names_declared_claims_and_fits_the_budget():
    c = ap.PRESETS["evidence"]
    assert c.n_seeds >= 5 and c.timing_repeats >= 5
    lines, notes = ap.sizing(c)
    assert set(lines) == {d.id for d in ap.declare(c)}
    for line in lines.values():
        assert "against 2 × margin" in line and f"with {c.n_seeds} seeds" in line or (
            f"with {c.timing_repeats} repeats" in line)  # fmt: skip
    assert notes and "2 quiet cores" in notes
    # the t-width arithmetic: 2·t(0.95, n−1)·sd/√n
    assert ap.t_width(1.0, 5) == pytest.approx(2 * 2.131847 / np.sqrt(5), rel=1e-6)


def test_equal_time_accuracy_is_plws_trained_that_long(tiny_run):
    """PLWS at equal wall time: p = 0 is top-only LWS, retrained here for the recorded
    equal-time step count, from the same initialisation and batches."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    c = _config(tiny_run)
    data = ap.load_data(c)
    n = int(ds.equal_time_steps.sel(dataset="mnist1d", p=0.0))
    assert n >= 1 and int(ds.train_steps.sel(dataset="mnist1d")) == ap.num_steps(c, data)
    model = ap.build_network(c, "mlp-16", data, 1)
    top = masked(optax.sgd(c.lr), layer_mask(functional(model)[0], "top"))
    rec, _ = ap.engine_run(c, model, top, data, steps=n, seed=1)
    got = float(ds.plws_equal_time_test_accuracy.sel(dataset="mnist1d", seed=1, p=0.0))
    assert got == pytest.approx(float(rec.test_accuracy.values.ravel()[-1]), abs=1.01 / 100)


def test_equal_time_steps():
    """SGD's steps × median SGD step (mean of its two bracketing timings) / median PLWS step."""
    sgd = np.array([[1.0, 2.0, 9.0], [3.0, 2.0, 1.0]])  # per repeat means 2, 2, 5 → median 2
    plws = np.array([0.5, 1.0, 100.0])  # median 1
    assert ap.equal_time_steps(1000, sgd, plws) == 2000
    assert ap.equal_time_steps(10, np.array([1.0]), np.array([1000.0])) == 1  # at least 1


def test_init_accuracy_is_the_fresh_network(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    c = _config(tiny_run)
    data = ap.load_data(c)
    for seed in (0, 1):
        for name in ("mlp-16", "cnn"):
            params0, apply = functional(ap.build_network(c, name, data, seed))
            acc = float(jnp.mean(jnp.argmax(apply(params0, data.x_test), -1) == data.y_test))
            got = float(ds.init_test_accuracy.sel(network=name, seed=seed, dataset="mnist1d"))
            assert got == pytest.approx(acc, abs=1e-6)


def test_reinit_masks_counts_and_controls():
    """Every rule resets round(k% · total) parameters; the matched controls have the active
    set's count per layer (and per |w0| bin), disjoint from it; active = library top-k."""
    from lazyrich.measures import layer_strata, magnitude_strata

    ks = jax.random.split(jax.random.key(0), 3)
    p0 = {
        "a": {"w": jax.random.normal(ks[0], (30, 20))},
        "b": {"w": jax.random.normal(ks[1], (40,))},
    }
    p1 = {"a": {"w": p0["a"]["w"] + 0.1 * jax.random.normal(ks[2], (30, 20))},
          "b": {"w": p0["b"]["w"] * 1.05}}  # fmt: skip
    strata = ap.control_strata(p0, bins=4, key=jax.random.key(1))
    flat = lambda t: np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])  # noqa: E731
    for kind in ("relative", "absolute", "layer"):
        m = ap.reinit_masks(p0, p1, kind=kind, percent=5.0, strata=strata)
        scores = activity(p0, p1, kind=kind)
        chex.assert_trees_all_equal(m["active"], select_active(scores, top_percent=5.0))
        chex.assert_trees_all_equal(m["least"], select_least(scores, 5.0))
        for rule in ap.RULES:
            assert flat(m[rule]).sum() == 32  # 5% of 640
        act = flat(m["active"])
        for rule, st in (("layer-matched", layer_strata(p0)),
                         ("magnitude-matched", magnitude_strata(p0, bins=4))):  # fmt: skip
            s, got = flat(st), flat(m[rule])
            np.testing.assert_array_equal(np.bincount(s[got], minlength=8),
                                          np.bincount(s[act], minlength=8))  # fmt: skip
            assert not (got & act).any()
    # resetting a mask puts exactly those entries back to init
    r = reset(p1, p0, m["layer-matched"])
    changed = flat(jax.tree.map(lambda a, b: a != b, r, p1))
    np.testing.assert_array_equal(changed, flat(m["layer-matched"]) & (flat(p0) != flat(p1)))


def test_plws_extremes_equal_sgd_and_top_only_lws():
    """PLWS with p = 1 is plain SGD and with p = 0 is static top-only LWS, step for step
    (engine calls with the study's seed: same initialisation, same batches)."""
    c = ap.Config(n_train=60, n_test=20, widths=(8,), cnn_width=0, focus="mlp-8", depth=2,
                  epochs=2, batch=10)  # fmt: skip
    data = ap.load_data(c)
    steps = ap.num_steps(c, data)
    model = ap.build_network(c, "mlp-8", data)
    params0, _ = functional(model)
    run = lambda step, **kw: ap.run_of(ap.engine_run(c, model, step, data, steps=steps, **kw)[1])  # noqa: E731
    sgd = run(optax.sgd(c.lr))
    top = run(masked(optax.sgd(c.lr), layer_mask(params0, "top")))
    grid = Grid.product(seed=[c.seed], p=[1.0, 0.0])
    both = ap.engine_run(c, model, PLWS(optax.sgd(c.lr)), data, steps=steps, grid=grid)[1]
    p1, p0 = ap.run_of(both, 0), ap.run_of(both, 1)
    assert ap.plws_full_fraction(c.seed, 1.0, steps) == 1.0
    assert ap.plws_full_fraction(c.seed, 0.0, steps) == 0.0
    assert 0.2 < ap.plws_full_fraction(c.seed, 0.5, 100) < 0.8
    chex.assert_trees_all_close(p1, sgd, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(p0, top, rtol=1e-5, atol=1e-6)
    # top-only training left every layer below the readout at init
    chex.assert_trees_all_equal(top.layers[:2], params0.layers[:2])
    assert not np.allclose(top.layers[2].weight, params0.layers[2].weight)
    assert not np.allclose(sgd.layers[0].weight, params0.layers[0].weight)


def _error(capsys, tmp_path, argv):
    code = main(["run", "active-params", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert not (tmp_path / "active-params").exists()  # nothing written
    return err


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--reinit-percents", "0"], "--reinit-percents: k=0.0 must be in (0, 100]"),
        (["--reinit-percents", "1", "100.5"], "--reinit-percents: k=100.5 must be in (0, 100]"),
        (["--reinit-percents", "-5"], "k=-5.0 must be in (0, 100]"),
        (["--active-percent", "0"], "--active-percent 0.0 must be in (0, 100]"),
        (["--lws-variants", ""], "--lws-variants: layer set '' is empty"),
        (["--lws-variants", "top", " , "], "layer set ' , ' is empty"),
        (["--plws-top", ""], "--plws-top: layer set '' is empty"),
        (["--lws-variants", "middle"], "unknown layer set 'middle'"),
        (["--lws-variants", "0,7"], "layer index 7 out of range for 4 layers"),
        (["--plws-p", "1.5"], "--plws-p: p=1.5 must be in [0, 1]"),
        (["--plws-p", "0.1", "-0.2"], "--plws-p: p=-0.2 must be in [0, 1]"),
        (["--plws-p", "nan"], "--plws-p: p=nan must be in [0, 1]"),
        (["--focus", "mlp-999"], "--focus 'mlp-999' is not one of the networks run"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--lr", "0"], "--lr must be a finite number > 0"),
        (["--scores", "relative", "squared"], "--scores: unknown score name 'squared'"),
        (["--reinit-percents", "60"], "k=60.0: the matched controls cannot be matched"),
        (["--n-seeds", "0"], "--n-seeds must be >= 1"),
    ],
)
def test_bad_options_one_line(capsys, tmp_path, argv, text):
    assert text in _error(capsys, tmp_path, argv)


def test_paper_preset_without_files(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _error(capsys, tmp_path, ["--preset", "paper", "--data-dir", str(empty)])
    assert "MNIST file train-images-idx3-ubyte not found" in err
    err = _error(capsys, tmp_path, ["--preset", "paper-cifar10", "--data-dir", str(empty)])
    assert "CIFAR-10" in err and "not found" in err
