"""The exact-gn study: a tiny end-to-end run, the per-step loss-change measure against a direct
computation, and its one-line errors (exit code 2)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

from analysis import exact_gn
from analysis.cli import main
from lazyrich.data import epoch_batches
from lazyrich.errors import ConfigError
from lazyrich.models import RevMLP, functional
from lazyrich.optim import exact_gauss_newton
from lazyrich.train import mse

OPTS = ("gn", "adam", "sgd")
TINY = [
    "--n-train", "64", "--n-test", "40", "--hidden", "48", "--full-batch", "32", "--batch", "16",
    "--epochs", "3", "--probe", "8", "--measure-every", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "exact-gn", *TINY, "--out", str(out)]) == 0
    return out / "exact-gn"


def test_end_to_end(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    assert list(ds.setting.values) == ["full", "mini"]
    assert list(ds.optimizer.values) == ["gn", "adam", "sgd"]
    assert ds.train_loss.shape == (2, 3, 4)  # epochs 0..3
    assert list(ds.measure_epoch.values) == [0, 2, 3]
    assert ds.cka.shape == (2, 3, 3, 2)
    # one step per epoch on the full batch, 64 // 16 = 4 steps per epoch on mini-batches
    assert list(ds.steps_per_epoch.values) == [1, 4]
    change = ds.batch_loss_change.values
    assert np.isfinite(change[1]).all() and np.isfinite(change[0, :, :3]).all()
    assert np.isnan(change[0, :, 3:]).all()
    # at init every optimizer has the same model: same losses, NTK similarity 1, CKA 1
    init = ds.train_loss.values[:, :, 0]
    np.testing.assert_allclose(init, np.broadcast_to(init[:, :1], init.shape), rtol=1e-6)
    np.testing.assert_allclose(ds.ntk_similarity.values[:, :, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(ds.kernel_distance.values[:, :, 0], 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.cka.values[:, :, 0], 1.0, atol=1e-5)

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["study"] == "exact-gn" and summary["preset"] == "quick"
    keys = {
        "final_train_loss", "final_test_loss", "final_test_accuracy", "epochs_to_train_loss",
        "mean_batch_loss_drop", "ntk_similarity_final", "kernel_distance_final", "cka_final",
    }  # fmt: skip
    for s in ("full", "mini"):
        assert summary["train_loss_level"][s] == pytest.approx(
            0.1 * float(ds.train_loss.sel(setting=s).values[0, 0])
        )
        for o in ("gn", "adam", "sgd"):
            r = summary[s][o]
            assert keys <= set(r)
            assert len(r["cka_final"]) == 2
            assert r["mean_batch_loss_drop"] == pytest.approx(
                -np.nanmean(ds.batch_loss_change.sel(setting=s, optimizer=o).values), rel=1e-6
            )
    assert {"full_batch_gn_fewer_epochs", "mini_batch_gn_saturates"} <= set(summary["paper_claims"])
    for fig in ("curves", "batch_loss_drop", "ntk_cka", "ntk_cka_vs_loss"):
        assert (tiny_run / "figures" / f"{fig}.png").stat().st_size > 1000
    # the report picks the study up
    assert main(["report", "--out", str(tiny_run.parent)]) == 0
    assert "exact-gn/figures/curves.png" in (tiny_run.parent / "report.html").read_text()


def _config(run_dir) -> exact_gn.Config:
    config = json.loads((run_dir / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(exact_gn.Config)}
    return exact_gn.Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in fields}
    )


def test_matched_train_loss_is_the_measure_where_the_loss_crossed_the_level(tiny_run):
    """The matched comparison, redone by brute force from results.nc: the level is the highest
    of the optimizers' lowest measured train losses (epochs >= 1), and each optimizer's matched
    values are those recorded at its first measured epoch >= 1 at or below it."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    summary = json.loads((tiny_run / "summary.json").read_text())
    matched = summary["matched_train_loss"]
    me = [int(e) for e in ds.measure_epoch.values]
    assert me == [0, 2, 3]
    for s in ("full", "mini"):
        r = ds.sel(setting=s)
        loss = {o: [float(r.train_loss.sel(optimizer=o, epoch=e)) for e in me] for o in OPTS}
        level = max(min(v[j] for j in range(len(me)) if me[j] >= 1) for v in loss.values())
        assert matched[s]["level"] == pytest.approx(level, rel=1e-12)
        assert matched[s]["level"] < matched[s]["initial_train_loss"]
        for o in OPTS:
            j = next(j for j in range(len(me)) if me[j] >= 1 and loss[o][j] <= level)
            got = matched[s][o]
            assert got["epoch"] == me[j]
            assert got["train_loss"] == pytest.approx(loss[o][j], rel=1e-12)
            ro = r.sel(optimizer=o, measure_epoch=me[j])
            assert got["ntk_similarity"] == pytest.approx(float(ro.ntk_similarity), rel=1e-12)
            assert got["kernel_distance"] == pytest.approx(float(ro.kernel_distance), rel=1e-12)
            assert got["cka"] == pytest.approx([float(v) for v in ro.cka.values], rel=1e-12)
    claim = summary["paper_claims"]["gn_closer_to_init_than_adam_at_matched_loss"]
    for s in ("full", "mini"):
        g, a = matched[s]["gn"], matched[s]["adam"]
        closer = g["ntk_similarity"] > a["ntk_similarity"] and sum(g["cka"]) > sum(a["cka"])
        assert claim[s] is closer

    # a fixed fraction of the initial loss that no optimizer reaches: said in words, no number
    c = dataclasses.replace(_config(tiny_run), match_fraction=1e-6)
    unreached = exact_gn.summarize(ds, c)
    assert "1e-06" in unreached["matched_train_loss"]["rule"]
    for s in ("full", "mini"):
        level = unreached["matched_train_loss"][s]["level"]
        assert level == pytest.approx(1e-6 * matched[s]["initial_train_loss"])
        for o in OPTS:
            assert unreached["matched_train_loss"][s][o].startswith("never reaches the level")
        assert unreached["paper_claims"]["gn_closer_to_init_than_adam_at_matched_loss"][s] is None


def test_batch_loss_change_matches_direct_computation(tiny_run):
    """Redo the first two mini-batch steps by hand (fresh RevMLP, library GN / Adam) and compare
    (L_after − L_before)/L_before on each batch with the recorded values."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    data = exact_gn.load_data(_config(tiny_run))
    model = RevMLP(
        40,
        num_blocks=2,
        hidden=48,
        out_dim=10,
        sigma=1e-3,
        key=jax.random.fold_in(jax.random.key(0), 0),
    )
    params, apply = functional(model)
    order = epoch_batches(jax.random.fold_in(jax.random.key(0), 1), 64, 16, 0)
    for name, opt in (("gn", exact_gauss_newton(model, 0.1)), ("adam", optax.adam(1e-4))):
        p, state = params, opt.init(params)
        for t in range(2):
            xb, yb = data.x_train[order[t]], data.y_train[order[t]]
            yh = jax.nn.one_hot(yb, 10)
            before = float(jnp.mean((apply(p, xb) - yh) ** 2))
            if name == "gn":
                upd, state = opt.update(None, state, p, x=xb, y=yb)
            else:
                g = jax.grad(lambda q, xb=xb, yb=yb: mse(apply(q, xb), yb))(p)
                upd, state = opt.update(g, state, p)
            p = optax.apply_updates(p, upd)
            after = float(jnp.mean((apply(p, xb) - yh) ** 2))
            got = float(ds.batch_loss_change.sel(setting="mini", optimizer=name).values[t])
            assert got == pytest.approx((after - before) / before, rel=2e-3, abs=1e-6)
    # the GN steps really fit their batch (a drop of tens of percent), Adam's barely move it
    gn = ds.batch_loss_change.sel(setting="mini", optimizer="gn").values
    assert np.nanmean(gn) < -0.05


def _error(capsys, tmp_path, argv):
    code = main(["run", "exact-gn", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert not (tmp_path / "exact-gn").exists()  # nothing written
    return err


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--features", "39"], "--features 39 is odd"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--epochs", "-2"], "--epochs must be >= 1"),
        (["--gn-lr-full", "0"], "--gn-lr-full must be a finite number > 0"),
        (["--gn-lr-mini", "-0.1"], "--gn-lr-mini must be a finite number > 0"),
        (["--adam-lr", "nan"], "--adam-lr must be a finite number > 0"),
        (["--sgd-lr", "-1"], "--sgd-lr must be a finite number > 0"),
        (["--probe", "200"], "--probe 200 exceeds --full-batch"),
        (["--match-fraction", "1.5"], "--match-fraction must be in [0, 1)"),
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
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    err = _error(capsys, tmp_path, ["--preset", "paper-cifar10", "--data-dir", str(empty)])
    assert "CIFAR-10 file data_batch_1 not found" in err
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    err = _error(capsys, tmp_path, ["--preset", "paper"])
    assert "no data directory" in err


def test_odd_input_dimension_from_the_api():
    with pytest.raises(ConfigError, match="even input dimension"):
        RevMLP(39, num_blocks=2, hidden=8, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="is odd"):
        exact_gn.validate(dataclasses.replace(exact_gn.PRESETS["quick"], features=21))
