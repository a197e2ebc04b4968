"""The `dldr` study: a tiny end-to-end run, the zero-padded vmapped subspace training against
unpadded runs, and the one-line errors of its bad input."""

import json
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree

from analysis import dldr
from analysis.cli import main
from lazyrich.data import batch_indices
from lazyrich.models import functional
from lazyrich.optim import init_p_bfgs, p_bfgs_params, p_bfgs_step, p_sgd
from lazyrich.train import Grid, cross_entropy, train

TINY = [
    "--n-train", "400", "--n-test", "100", "--mlp-width", "8", "--mlp-depth", "1",
    "--cnn-width", "2", "--batch", "50", "--sample-epochs", "2", "--samples-per-epoch", "4",
    "--full-epochs", "3", "--ds", "2", "4", "--subspace-epochs", "2", "--pbfgs-batch", "100",
]  # fmt: skip

TINY_CONFIG = replace(
    dldr.PRESETS["quick"],
    networks=("mlp",),
    n_train=400,
    n_test=100,
    mlp_width=8,
    mlp_depth=1,
    batch=50,
    sample_epochs=2,
    samples_per_epoch=4,
    full_epochs=3,
    ds=(2, 4),
    subspace_epochs=2,
    pbfgs_batch=100,
)


def test_end_to_end(tmp_path, capsys):
    assert main(["run", "dldr", *TINY, "--out", str(tmp_path)]) == 0
    study = tmp_path / "dldr"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["samples"] == 1 + 2 * 4
    for net in ("mlp", "cnn"):
        entry = summary[net]
        noisy = entry["label_noise"]
        assert noisy["fraction"] == 0.2
        for e in (entry, noisy):
            assert 0.0 <= e["full_test_accuracy"] <= 1.0
            assert set(e["d"]) == {"2", "4"}
            for v in e["d"].values():
                assert set(v) >= {
                    "pbfgs_test_accuracy",
                    "psgd_test_accuracy",
                    "pbfgs_epochs_to_95pct",
                    "explained_variance",
                }
                assert 0.0 <= v["pbfgs_test_accuracy"] <= 1.0
                n95 = v["pbfgs_epochs_to_95pct"]
                assert n95 is None or 0 <= n95 <= 2
            # explained variance grows with d and stays a fraction
            assert 0 < e["d"]["2"]["explained_variance"] <= e["d"]["4"]["explained_variance"] <= 1
    ds = xr.open_dataset(study / "results.nc", engine="scipy")
    assert ds.pbfgs_test_accuracy.shape == (2, 2, 2, 3)  # network, condition, d, epoch
    assert ds.sgd_test_accuracy.shape == (2, 2, 4)
    assert ds.explained_variance_ratio.shape == (2, 2, 8)
    np.testing.assert_allclose(ds.explained_variance_ratio.sum("component"), 1.0, rtol=1e-5)
    # the summary's numbers are the stored curves' last points / the cumulative spectrum
    mlp = ds.sel(network="mlp", condition="clean")
    assert summary["mlp"]["full_test_accuracy"] == pytest.approx(
        float(mlp.sgd_test_accuracy[-1]), abs=1e-6
    )
    assert summary["mlp"]["d"]["4"]["pbfgs_test_accuracy"] == pytest.approx(
        float(mlp.pbfgs_test_accuracy.sel(d=4)[-1]), abs=1e-6
    )
    assert summary["mlp"]["d"]["2"]["explained_variance"] == pytest.approx(
        float(mlp.explained_variance_ratio[:2].sum()), rel=1e-5
    )
    # P-SGD/P-BFGS restart from w0: epoch 0 equals SGD's accuracy at initialisation
    np.testing.assert_allclose(mlp.pbfgs_test_accuracy[:, 0], mlp.sgd_test_accuracy[0])
    ds.close()
    for fig in ("explained_variance", "accuracy_vs_epoch", "accuracy_vs_d"):
        assert (study / "figures" / f"{fig}.png").stat().st_size > 1000


def test_padded_subspaces_equal_separate_runs():
    """Each (d, seed) run of the one vmapped, zero-padded engine call is the run with its own
    d×D matrix: P-SGD against an engine run of `p_sgd` with the unpadded P, P-BFGS against a
    plain loop of the flat reference `p_bfgs_step` over the engine's batches."""
    c = TINY_CONFIG
    data = dldr.load("mnist1d", c)
    network = dldr.build_network("mlp", data, c)
    seeds, d_all, dmax = [0, 1], (2, 4), 4
    c = replace(c, ds=d_all)
    w0s = [dldr.initial_params(network, s) for s in seeds]
    p_all = jnp.stack(
        [jnp.linalg.qr(jax.random.normal(jax.random.key(3 + s), (w0s[0].size, dmax)))[0].T
         for s in seeds]
    )  # fmt: skip
    empty = jnp.zeros((0,), jnp.int32)
    runs = {}
    for method in ("psgd", "pbfgs"):
        step = dldr.Subspace(p_all, empty, method, lr=c.psgd_lr)
        _, params = dldr.subspace_runs(
            network, p_all, data, c, seeds, step, return_params=True, progress=False
        )
        runs[method] = jax.vmap(lambda q: ravel_pytree(q)[0])(params).reshape(2, 2, -1)
    n = data.n_train
    for j, s in enumerate(seeds):
        model = network(jax.random.fold_in(jax.random.key(s), 0), {})
        w0 = jnp.asarray(w0s[j])
        for i, d in enumerate(d_all):
            p = p_all[j, :d]
            nb = n // c.batch
            _, ref = train(
                model, p_sgd(c.psgd_lr, p), data, record_at=[c.subspace_epochs * nb],
                grid=Grid.product(seed=[s]), batch=c.batch, loss="ce", return_params=True,
                progress=False,
            )  # fmt: skip
            w_ref = jax.vmap(lambda q: ravel_pytree(q)[0])(ref)[0]
            np.testing.assert_allclose(runs["psgd"][i, j], w_ref, atol=2e-5)

            _, unravel = ravel_pytree(functional(model)[0])
            apply = functional(model)[1]

            def loss(w, batch, apply=apply, unravel=unravel):
                return cross_entropy(apply(unravel(w), batch[0]), batch[1])

            step = jax.jit(lambda st, b: p_bfgs_step(loss, st, b))
            st = init_p_bfgs(w0, p)
            order = jax.random.fold_in(jax.random.key(s), 1)
            for t in range(c.subspace_epochs * (n // c.pbfgs_batch)):
                idx = batch_indices(order, n, c.pbfgs_batch, t)
                st = step(st, (data.x_train[idx], data.y_train[idx]))
            np.testing.assert_allclose(runs["pbfgs"][i, j], p_bfgs_params(st), atol=2e-5)
            assert float(jnp.linalg.norm(p_bfgs_params(st) - w0)) > 1e-3  # it did move


def test_sample_schedule_and_epochs_to():
    c = replace(TINY_CONFIG, sample_epochs=3, samples_per_epoch=3)
    steps = dldr.sample_steps(c, 8)
    assert steps.tolist() == [0, 3, 5, 8, 11, 13, 16, 19, 21, 24]  # ends of epochs included
    assert len(steps) == dldr.num_samples(c)
    acc = np.array([0.1, 0.5, 0.8, 0.9])
    assert dldr.epochs_to(acc, 0.8) == 2 and dldr.epochs_to(acc, 0.95) is None


def _run_error(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "args, text",
    [
        # d larger than samples − 1 (1 + 2·2 = 5 samples)
        (
            ["--sample-epochs", "2", "--samples-per-epoch", "2", "--ds", "5", "10"],
            "d=5 exceeds samples−1=4",
        ),
        # a sampling schedule that yields too few samples
        (["--sample-epochs", "0", "--ds", "1"], "yields 1 sample(s); PCA needs at least 2"),
        # more samples per epoch than SGD steps: the schedule would repeat samples
        (
            ["--n-train", "400", "--batch", "200", "--samples-per-epoch", "3", "--ds", "2"],
            "--samples-per-epoch 3 exceeds the 2 SGD steps per epoch",
        ),
        (["--full-epochs", "2", "--sample-epochs", "5"], "--full-epochs 2 is shorter"),
        (["--label-noise", "1.5"], "--label-noise must be in [0, 1)"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--ds", "0"], "d=0 must be >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, args, text):
    code, err = _run_error(capsys, ["run", "dldr", *args, "--out", str(tmp_path)])
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert text in err, err
    assert not (tmp_path / "dldr").exists()


def test_paper_preset_without_data_files(capsys, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("LAZYRICH_DATA", str(empty))  # the CLI sets it; restored after the test
    argv = ["run", "dldr", "--preset", "paper", "--data-dir", str(empty), "--out", str(tmp_path)]
    code, err = _run_error(capsys, argv)
    assert code == 2 and err.count("\n") == 0, err
    assert "not found" in err and str(empty) in err and "download it from" in err
    assert not (tmp_path / "dldr").exists()
    # no data directory at all
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    code, err = _run_error(capsys, ["run", "dldr", "--preset", "paper", "--out", str(tmp_path)])
    assert code == 2 and err.count("\n") == 0 and "no data directory" in err, err
