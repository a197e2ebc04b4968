"""The `dldr` study: a tiny end-to-end run with its claims, the zero-padded vmapped subspace
runs against unpadded runs and the flat P-BFGS reference, the verdict rules, and the one-line
errors of its bad input."""

import json
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree

from analysis import dldr
from analysis._report_claims import check_claims
from analysis.cli import main
from lazyrich.data import batch_indices
from lazyrich.models import functional
from lazyrich.optim import init_p_bfgs, p_bfgs_params, p_bfgs_step, p_sgd
from lazyrich.train import Grid, cross_entropy, train

TINY = [
    "--n-train", "400", "--n-test", "100", "--width", "8", "--depth", "1", "--batch", "50",
    "--sample-epochs", "2", "--samples-per-epoch", "4", "--ds", "2", "4",
    "--subspace-epochs", "2", "--pbfgs-batch", "100", "--seeds", "0", "1",
    "--tuned-lrs", "0.1", "--tuned-epochs", "3", "--noise-epochs", "3",
]  # fmt: skip

TINY_CONFIG = replace(
    dldr.PRESETS["quick"],
    n_train=400,
    n_test=100,
    width=8,
    depth=1,
    batch=50,
    sample_epochs=2,
    samples_per_epoch=4,
    ds=(2, 4),
    subspace_epochs=2,
    pbfgs_batch=100,
    seeds=(0, 1),
)


def test_end_to_end(tmp_path):
    assert main(["run", "dldr", *TINY, "--out", str(tmp_path)]) == 0
    study = tmp_path / "dldr"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["samples"] == 1 + 2 * 4 and summary["fallback"] == "smallest"
    claims = check_claims("dldr", summary["claims"])
    assert [c["id"] for c in claims] == [
        "pbfgs_matches_tuned_sgd",
        "pbfgs_fewer_epochs",
        "trajectory_beats_random_subspace",
        "robust_to_label_noise",
    ]
    # 3 epochs of SGD cannot memorise 40% noisy labels: the control fails, undecided
    assert summary["label_noise"]["fraction"] == 0.4
    assert np.mean(summary["label_noise"]["sgd_final_train_accuracy"]) < 0.9
    assert claims[3]["verdict"] == "undecided"
    ds = xr.open_dataset(study / "results.nc", engine="scipy")
    assert ds.pbfgs_test_accuracy.shape == (2, 2, 3)  # d, seed, epoch
    assert ds.random_test_accuracy.shape == (2, 3)
    assert ds.tuned_test_accuracy.shape == (1, 2, 4)
    assert ds.sgd_test_accuracy.shape == (2, 5)  # sampling 2 + continued 2 epochs
    assert ds.noisy_sgd_test_accuracy.shape == (2, 4)
    np.testing.assert_allclose(ds.explained_variance_ratio.sum("component"), 1.0, rtol=1e-5)
    # explained variance grows with d and stays a fraction
    ev = summary["d"]
    pairs = zip(ev["2"]["explained_variance"], ev["4"]["explained_variance"], strict=True)
    assert all(0 < a <= b <= 1 + 1e-6 for a, b in pairs)
    # claim 1's value is the mean over seeds of P-BFGS(d=4) minus tuned SGD, final epoch
    diff = ds.pbfgs_test_accuracy.sel(d=4).isel(pbfgs_epoch=-1) - ds.tuned_test_accuracy.isel(
        eta=0, tuned_epoch=-1
    )
    assert claims[0]["measured"]["value"] == pytest.approx(float(diff.mean()), abs=1e-9)
    # every subspace run restarts from its seed's w0: epoch 0 equals SGD's epoch 0
    for name in ("pbfgs", "psgd"):
        v = ds[f"{name}_test_accuracy"].isel({f"{name}_epoch": 0})
        np.testing.assert_allclose(v, np.broadcast_to(ds.sgd_test_accuracy[:, 0], v.shape))
    ds.close()
    for fig in ("explained_variance", "accuracy_vs_epoch", "accuracy_vs_d", "label_noise"):
        assert (study / "figures" / f"{fig}.png").stat().st_size > 1000
    assert main(["report", "--out", str(tmp_path)]) == 0


def test_padded_subspaces_equal_separate_runs():
    """Each (d, seed) run of the one vmapped, zero-padded engine call is the run with its own
    d×D matrix: P-SGD against an engine run of `p_sgd` with the unpadded P, P-BFGS (both
    fallbacks) against a plain loop of the flat reference `p_bfgs_step`."""
    c = TINY_CONFIG
    data = dldr.load(c)
    network = dldr.build_network(data, c)
    seeds, d_all, dmax = list(c.seeds), c.ds, max(c.ds)
    w0s = [dldr.initial_params(network, s) for s in seeds]
    p_all = jnp.stack([dldr.random_subspace(w0s[0].size, dmax, s + 3) for s in seeds])
    flat = jax.vmap(lambda q: ravel_pytree(q)[0])
    runs = {}
    steps = {
        "psgd": replace(c, subspace_epochs=2),
        "pbfgs-smallest": c,
        "pbfgs-zero": replace(c, fallback="zero"),
    }
    for name, cc in steps.items():
        step = dldr.psgd_step(p_all, cc, data) if name == "psgd" else dldr.pbfgs_step(p_all, cc)
        _, params = dldr.subspace_runs(
            network, data, cc, step, d_all, return_params=True, progress=False
        )
        runs[name] = flat(params).reshape(len(d_all), len(seeds), -1)
    n = data.n_train
    nb = n // c.batch
    decay = {c.subspace_epochs * nb // 2: 0.1, 3 * c.subspace_epochs * nb // 4: 0.1}
    for j, s in enumerate(seeds):
        model = network(jax.random.fold_in(jax.random.key(s), 0), {})
        w0 = jnp.asarray(w0s[j])
        params0, apply = functional(model)
        _, unravel = ravel_pytree(params0)
        for i, d in enumerate(d_all):
            p = p_all[j, :d]
            lr = jax.numpy.asarray(c.psgd_lr)
            _, ref = train(
                model, p_sgd(optax_decay(lr, decay), p), data,
                record_at=[c.subspace_epochs * nb], grid=Grid.product(seed=[s]),
                batch=c.batch, loss="ce", return_params=True, progress=False,
            )  # fmt: skip
            np.testing.assert_allclose(runs["psgd"][i, j], flat(ref)[0], atol=2e-5)
            for fallback in ("smallest", "zero"):

                def loss(w, batch, apply=apply, unravel=unravel):
                    return cross_entropy(apply(unravel(w), batch[0]), batch[1])

                step = jax.jit(lambda st, b, f=fallback: p_bfgs_step(loss, st, b, fallback=f))
                st = init_p_bfgs(w0, p)
                order = jax.random.fold_in(jax.random.key(s), 1)
                for t in range(c.subspace_epochs * (n // c.pbfgs_batch)):
                    idx = batch_indices(order, n, c.pbfgs_batch, t)
                    st = step(st, (data.x_train[idx], data.y_train[idx]))
                got = runs[f"pbfgs-{fallback}"][i, j]
                np.testing.assert_allclose(got, p_bfgs_params(st), atol=2e-4)  # float32 BFGS
                assert float(jnp.linalg.norm(p_bfgs_params(st) - w0)) > 1e-3  # it did move


def optax_decay(lr, decay):
    import optax

    return optax.piecewise_constant_schedule(lr, decay)


def test_t_interval_and_verdicts():
    m = dldr.t_interval([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t_{0.95, 2} = 2.919986: half-width 0.2919986 / sqrt(3)
    assert m["value"] == pytest.approx(0.2)
    assert m["hi"] - m["value"] == pytest.approx(2.919986 * 0.1 / np.sqrt(3), rel=1e-6)
    assert m["lo"] > 0 and dldr.verdict(m, 0.0, None) == "agrees"
    assert dldr.verdict(m, 0.0, 0.05) == "undecided"  # wider than 0.05
    assert dldr.verdict(m, 0.25, None) == "undecided"  # lo < 0.25 < hi
    assert dldr.verdict({"value": 0.07, "lo": 0.05, "hi": 0.09}, 0.0, 0.05) == "agrees"
    assert dldr.verdict({"value": 0.1, "lo": 0.01, "hi": 0.2}, 0.0, 0.05) == "undecided"
    assert dldr.verdict({"value": -0.1, "lo": -0.2, "hi": -0.01}, 0.0, 0.05) == "disagrees"
    one = dldr.t_interval([0.3])
    assert one["lo"] is None and dldr.verdict(one, 0.0, None) == "undecided"


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
        (["--fallback", "largest"], "--fallback 'largest' is unknown"),
        # a random subspace cannot have more directions than the 50 parameters
        (
            [
                "--width",
                "1",
                "--depth",
                "1",
                "--sample-epochs",
                "25",
                "--noise-epochs",
                "25",
                "--ds",
                "70",
            ],
            "d=70 exceeds the 50 parameters",
        ),
        (["--label-noise", "1.0"], "--label-noise must be in [0, 1)"),
        (["--label-noise", "-0.1"], "--label-noise must be in [0, 1)"),
        (
            ["--sample-epochs", "2", "--samples-per-epoch", "2", "--ds", "5", "10"],
            "d=5 exceeds samples−1=4",
        ),
        (["--sample-epochs", "0", "--ds", "1"], "yields 1 sample(s); PCA needs at least 2"),
        (["--noise-epochs", "2", "--sample-epochs", "5"], "--noise-epochs 2 is shorter"),
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


def test_mnist_without_data_files(capsys, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)  # --data-dir alone says where
    argv = ["run", "dldr", "--data", "mnist", "--data-dir", str(empty), "--out", str(tmp_path)]
    code, err = _run_error(capsys, argv)
    assert code == 2 and err.count("\n") == 0, err
    assert "not found" in err and str(empty) in err and "download it from" in err
    assert not (tmp_path / "dldr").exists()
