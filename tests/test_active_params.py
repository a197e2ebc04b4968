"""The active-params study: a tiny end-to-end run, oracles for its re-initialisation and its
LWS/PLWS training loops, and its one-line errors (exit code 2)."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

from analysis import active_params as ap
from analysis.cli import main
from lazyrich import functional
from lazyrich.measures._active import activity, reset, select_active, select_least
from lazyrich.optim import PLWS, layer_mask, masked
from lazyrich.train import Grid

TINY = [
    "--n-train", "200", "--n-test", "100", "--widths", "16", "--depth", "2",
    "--cnn-width", "2", "--focus", "mlp-16", "--epochs", "2", "--batch", "20", "--lr", "0.2",
    "--reinit-percents", "1", "50", "100", "--plws-p", "0", "1", "--timing-repeats", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "active-params", *TINY, "--out", str(out)]) == 0
    return out / "active-params"


def _config(run_dir) -> ap.Config:
    config = json.loads((run_dir / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(ap.Config)}
    return ap.Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in fields}
    )


def test_end_to_end(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    assert list(ds.network.values) == ["mlp-16", "cnn"]
    assert ds.active_fraction.shape == (2, 4)  # MLP depth 2 → 3 layers, padded to the CNN's 4
    assert ds.sizes["layer"] == 4 and np.isnan(ds.active_fraction.values[0, 3])
    # layer sizes: 40·16, 16·16, 16·10 for mlp-16
    np.testing.assert_array_equal(ds.layer_size.values[0, :3], [640, 256, 160])
    # shares sum to one; the active count is 5% of all parameters (active_percent default)
    np.testing.assert_allclose(np.nansum(ds.active_share.values, axis=1), 1.0, rtol=1e-6)
    active = np.nansum(ds.active_fraction.values * ds.layer_size.values, axis=1)
    total = np.nansum(ds.layer_size.values, axis=1)
    np.testing.assert_array_equal(active, np.round(total * 0.05))

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["study"] == "active-params"
    for key in ("active_fraction_by_layer", "active_share_bottom_layer"):
        assert set(summary[key]) == {"16", "cnn"}
    assert len(summary["active_fraction_by_layer"]["16"]) == 3
    share, size = summary["active_share_bottom_layer"]["16"], summary["bottom_size_share"]["16"]
    assert size == pytest.approx(640 / (640 + 256 + 160))
    assert summary["bottom_enrichment"]["16"] == pytest.approx(share / size)
    assert set(summary["reinit_accuracy_drop"]) == {"1", "50", "100"}
    for d in summary["reinit_accuracy_drop"].values():
        assert set(d) == {"active", "random", "least"}
    assert set(summary["lws_test_accuracy"]) == {"top", "bottom", "top+bottom", "all"}
    assert set(summary["plws_test_accuracy"]) == set(summary["plws_backprop_speedup"]) == {"0", "1"}
    assert all(v > 0 for v in summary["plws_backprop_speedup"].values())
    assert ds.plws_train_seconds.shape == (2, 2) and np.isfinite(ds.sgd_train_seconds).all()
    assert summary["sgd_train_seconds"] == pytest.approx(float(ds.sgd_train_seconds.min()))
    sgd = summary["sgd_test_accuracy"]
    assert sgd == pytest.approx(float(ds.sgd_test_accuracy.sel(network="mlp-16")))
    # same steps, same batches: "all" layers and p = 1 are SGD, p = 0 is top-only LWS
    tol = 1.01 / 100
    assert summary["lws_test_accuracy"]["all"] == pytest.approx(sgd, abs=tol)
    assert summary["plws_test_accuracy"]["1"] == pytest.approx(sgd, abs=tol)
    assert summary["plws_test_accuracy"]["0"] == pytest.approx(
        summary["lws_test_accuracy"]["top"], abs=tol
    )
    assert summary["plws_full_step_fraction"] == {"0": 0.0, "1": 1.0}
    for k, d in summary["reinit_accuracy_drop"].items():
        for rule, drop in d.items():
            assert drop == pytest.approx(sgd - summary["reinit_test_accuracy"][k][rule])
    assert "paper_claims" in summary
    for fig in ("active_share_by_layer", "reinit_accuracy", "lws_accuracy"):
        assert (tiny_run / "figures" / f"{fig}.png").stat().st_size > 1000
    assert main(["report", "--out", str(tiny_run.parent)]) == 0
    assert (
        "active-params/figures/reinit_accuracy.png" in (tiny_run.parent / "report.html").read_text()
    )


def test_reset_everything_gives_init_accuracy(tiny_run):
    """k = 100%: every rule resets every parameter, so the accuracy is that of a freshly built
    initial network, evaluated here directly."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    c = _config(tiny_run)
    data = ap.load_data(c)
    for name in ("mlp-16", "cnn"):
        params0, apply = functional(ap.build_network(c, name, data))
        acc = float(jnp.mean(jnp.argmax(apply(params0, data.x_test), -1) == data.y_test))
        got = ds.reinit_test_accuracy.sel(network=name, k=100.0).values
        np.testing.assert_allclose(got, acc, atol=1e-6)
        assert float(ds.init_test_accuracy.sel(network=name)) == pytest.approx(acc, abs=1e-6)
    # and the trained net's accuracy is not the init one, so the test can fail (the tiny net
    # overfits 200 examples: its train accuracy doubles, its test accuracy moves a little)
    trained, train, init = (
        float(ds[v].sel(network="mlp-16"))
        for v in ("sgd_test_accuracy", "sgd_train_accuracy", "init_test_accuracy")
    )
    assert abs(trained - init) > 0.02 and train > init + 0.1


def test_rank_selection_matches_library():
    """`rule_ranks` + `reset_first` reset exactly `select_active` / `select_least`'s parameters
    (ties, here the unchanged readout, broken the same way), and a random k% of the right size."""
    k0, k1 = jax.random.split(jax.random.key(0))
    p0 = {"a": jax.random.normal(k0, (7, 5)), "b": jax.random.normal(k1, (11,)), "c": jnp.ones(6)}
    p1 = {
        "a": p0["a"] + 0.3 * jax.random.normal(jax.random.key(2), (7, 5)),
        "b": p0["b"] * 1.5,
        "c": p0["c"],  # unchanged: score 0 ties
    }
    ranks = ap.rule_ranks(p0, p1, jax.random.key(3), kind="relative")
    scores = activity(p0, p1)
    total = 35 + 11 + 6
    flat = lambda tree: jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])  # noqa: E731
    for percent in (10.0, 50.0, 100.0):
        count = ap.reset_count(total, percent)
        library = {0: select_active(scores, top_percent=percent), 2: select_least(scores, percent)}
        for j, mask in library.items():
            np.testing.assert_array_equal(ranks[j] < count, flat(mask))
            got = ap.reset_first(p0, p1, ranks[j], jnp.int32(count))
            chex.assert_trees_all_equal(got, reset(p1, p0, mask))
        # random: a permutation, so exactly `count` parameters
        assert int(jnp.sum(ranks[1] < count)) == count
        assert sorted(np.asarray(ranks[1]).tolist()) == list(range(total))


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
