"""The `dldr` study: a tiny end-to-end run with its claims, the zero-padded vmapped subspace
runs against unpadded runs and the flat P-BFGS reference, its claims (declared, per seed,
judged by `lazyrich.evidence`), and the one-line errors of its bad input."""

import json
from dataclasses import fields, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree
from scipy import stats

from analysis import dldr
from analysis.cli import main
from lazyrich import evidence
from lazyrich.data import batch_indices
from lazyrich.errors import ConfigError
from lazyrich.models import functional
from lazyrich.optim import p_sgd
from lazyrich.train import Grid, cross_entropy, final_params, train
from tests._oracles import init_p_bfgs, p_bfgs_params, p_bfgs_step

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


IDS = [
    "trajectory_low_dimensional",
    "trajectory_lower_dimensional_than_matched_walk",
    "pbfgs_matches_tuned_sgd",
    "trajectory_beats_random_subspace",
    "pbfgs_matches_sgd_continued",
    "psgd_matches_tuned_sgd",
    "pbfgs_fewer_epochs",
    "sgd_memorises_noisy_labels",
    "robust_to_label_noise",
]
CONTROLS = {  # each control row follows the claim it controls
    "trajectory_lower_dimensional_than_matched_walk": "trajectory_low_dimensional",
    "trajectory_beats_random_subspace": "pbfgs_matches_tuned_sgd",
    "pbfgs_matches_sgd_continued": "trajectory_beats_random_subspace",
    "robust_to_label_noise": "sgd_memorises_noisy_labels",
}


def _config(study) -> dldr.Config:
    config = json.loads((study / "config.json").read_text())
    names = {f.name for f in fields(dldr.Config)}
    kw: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names
    }
    return dldr.Config(**kw)


def test_end_to_end(tmp_path):
    assert main(["run", "dldr", *TINY, "--out", str(tmp_path)]) == 0
    study = tmp_path / "dldr"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["samples"] == 1 + 2 * 4 and summary["fallback"] == "smallest"
    claims = summary["claims"]
    # the rows are the claims the config declares, in order; a quick run is smoke
    declared = dldr.declare(_config(study))
    assert [c["id"] for c in claims] == [c.id for c in declared] == IDS
    assert all(c["verdict"] == "smoke" and c["unit"] == "seed" for c in claims)
    # each row's interval is the evidence interval of its per-seed values (units.nc)
    units = evidence.read_units(study / evidence.UNITS_FILE)
    for claim, row in zip(declared, claims, strict=True):
        assert len(units[claim.id]) == 2  # one value per seed
        assert evidence.measure(claim, units[claim.id]).as_dict() == row["measured"]
        assert row["margin"] == claim.margin and row["kind"] == claim.kind
    # the label-noise control is its own row: SGD's final train accuracy on the noisy labels
    assert summary["label_noise"]["fraction"] == 0.4
    memorised = summary["label_noise"]["sgd_final_train_accuracy"]
    assert units["sgd_memorises_noisy_labels"] == pytest.approx(memorised, abs=1e-12)
    by = {c["id"]: c for c in claims}
    row = by["sgd_memorises_noisy_labels"]
    assert row["theory"] == 0.9 and row["kind"] == "above"
    for control, claim in CONTROLS.items():  # controls are rows, next to what they control
        assert IDS.index(control) == IDS.index(claim) + 1
    ds = xr.open_dataset(study / "results.nc", engine="scipy")
    # the low-dimension rows: the top-4 fraction of 9 samples against the random walks
    cum = np.cumsum(ds.explained_variance_ratio.values, -1)[:, 3]
    assert units["trajectory_low_dimensional"] == pytest.approx(cum.tolist(), abs=1e-9)
    assert by["trajectory_low_dimensional"]["theory"] == pytest.approx(
        dldr.isotropic_walk_explained_variance(9, 4)
    )
    assert ds.step_norm.shape == (2, 8) and bool((ds.step_norm > 0).all())
    walk = [dldr.walk_explained_variance(n, 4) for n in ds.step_norm.values]
    got = units["trajectory_lower_dimensional_than_matched_walk"]
    assert got == pytest.approx((cum - np.asarray(walk)).tolist(), abs=1e-9)
    # the continued-SGD and P-SGD rows: final test accuracies, per seed
    pb = ds.pbfgs_test_accuracy.sel(d=4).isel(pbfgs_epoch=-1).values
    cont = ds.sgd_test_accuracy.isel(sgd_epoch=-1).values
    assert units["pbfgs_matches_sgd_continued"] == pytest.approx((pb - cont).tolist(), abs=1e-9)
    psgd = ds.psgd_test_accuracy.sel(d=4).isel(psgd_epoch=-1).values
    tuned = ds.tuned_test_accuracy.isel(eta=0, tuned_epoch=-1).values
    assert units["psgd_matches_tuned_sgd"] == pytest.approx((psgd - tuned).tolist(), abs=1e-9)
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
    assert units["pbfgs_matches_tuned_sgd"] == pytest.approx(diff.values.tolist(), abs=1e-9)
    row = by["pbfgs_matches_tuned_sgd"]
    assert row["measured"]["value"] == pytest.approx(float(diff.mean()), abs=1e-9)
    # every subspace run restarts from its seed's w0: epoch 0 equals SGD's epoch 0
    for name in ("pbfgs", "psgd"):
        v = ds[f"{name}_test_accuracy"].isel({f"{name}_epoch": 0})
        np.testing.assert_allclose(v, np.broadcast_to(ds.sgd_test_accuracy[:, 0], v.shape))
    ds.close()
    for fig in ("explained_variance", "accuracy_vs_epoch", "accuracy_vs_d", "label_noise"):
        assert (study / "figures" / f"{fig}.png").stat().st_size > 1000
    assert main(["report", "--out", str(tmp_path)]) == 0  # the report accepts the rows


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
        res = dldr.subspace_runs(network, data, cc, step, d_all, keep_params=True, progress=False)
        params = final_params(res, network)
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
            fit = train(
                model, p_sgd(optax_decay(lr, decay), p), data,
                record_at=[c.subspace_epochs * nb], grid=Grid.product(seed=[s]),
                batch=c.batch, loss="ce", keep_params=True, progress=False,
            )  # fmt: skip
            ref = final_params(fit, model)
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


def _summary(
    pb, tuned, rnd, e_pb, e_sgd, noisy=None, ev=(0.999, 0.998), walk=(0.95, 0.96), cont=None,
    psgd=None,
) -> dict:  # fmt: skip
    """A summary's headline numbers, as `summarize` writes them, for two seeds and d = 4."""
    d4 = {
        "pbfgs_test_accuracy": pb,
        "pbfgs_epochs_to_target": e_pb,
        "psgd_test_accuracy": tuned if psgd is None else psgd,
        "explained_variance": list(ev),
        "matched_walk_explained_variance": list(walk),
    }
    s = {
        "tuned_sgd": {"lr": 0.1, "test_accuracy": tuned, "epochs_to_target": e_sgd},
        "random_pbfgs_test_accuracy": rnd,
        "sgd_continued_test_accuracy": tuned if cont is None else cont,
        "d": {"4": d4},
    }
    if noisy is not None:
        train, sgd_test, pb_test = noisy
        s["label_noise"] = {
            "sgd_final_train_accuracy": train,
            "sgd_final_test_accuracy": sgd_test,
            "sgd_best_test_accuracy": sgd_test,
            "pbfgs_test_accuracy": pb_test,
        }
    return s


def test_claims_are_per_seed_values_under_the_one_rule():
    """Each row's samples are the per-seed differences; the verdicts follow lazyrich.evidence
    with the declared margins (a two-seed t interval has t_{0.95, 1} = 6.314)."""
    c = replace(TINY_CONFIG, tuned_epochs=3)  # cap = max(2, 3) + 1 = 4
    s = _summary(
        pb=[0.905, 0.915], tuned=[0.90, 0.91], rnd=[0.50, 0.55], e_pb=[1, None], e_sgd=[3, 3],
        noisy=([0.99, 0.98], [0.60, 0.62], [0.80, 0.79]),
    )  # fmt: skip
    rows = dldr.judge_claims(s, c)
    assert [r["id"] for r in rows] == [c.id for c in dldr.declare(c)] == IDS
    by = {r["id"]: r for r in rows}
    assert by["pbfgs_matches_tuned_sgd"]["samples"] == pytest.approx([0.005, 0.005])
    # a zero-spread difference inside ±0.02 of 0: equal accuracy within the margin
    assert by["pbfgs_matches_tuned_sgd"]["verdict"] == "agrees"
    assert by["pbfgs_matches_tuned_sgd"]["kind"] == "equal"
    # never reached counts as the cap 4; whole epochs: the interval is at least ± 0.5 wide
    assert by["pbfgs_fewer_epochs"]["samples"] == [2.0, -1.0]
    m = by["pbfgs_fewer_epochs"]["measured"]
    assert m["value"] == 0.5 and m["hi"] - m["value"] == pytest.approx(6.313752 * 1.5, rel=1e-6)
    assert by["pbfgs_fewer_epochs"]["verdict"] == "undecided"
    assert by["trajectory_beats_random_subspace"]["samples"] == pytest.approx([0.405, 0.365])
    assert by["trajectory_beats_random_subspace"]["verdict"] == "agrees"
    assert by["sgd_memorises_noisy_labels"]["samples"] == [0.99, 0.98]
    assert by["sgd_memorises_noisy_labels"]["verdict"] == "agrees"  # above 0.9 + 0.02
    assert by["robust_to_label_noise"]["samples"] == pytest.approx([0.20, 0.17])
    assert by["robust_to_label_noise"]["verdict"] == "agrees"
    # 9 samples, d = 4: the isotropic walk explains 0.9025; margin (1 − 0.9025)/2 = 0.0488
    row = by["trajectory_low_dimensional"]
    assert row["theory"] == pytest.approx(0.9024814926, abs=1e-9)
    assert row["margin"] == pytest.approx((1 - 0.9024814926) / 2, abs=1e-9)
    assert row["samples"] == [0.999, 0.998] and row["verdict"] == "agrees"
    row = by["trajectory_lower_dimensional_than_matched_walk"]
    assert row["samples"] == pytest.approx([0.049, 0.038])  # within the margin 0.0488
    assert row["verdict"] == "undecided"
    assert by["pbfgs_matches_sgd_continued"]["samples"] == pytest.approx([0.005, 0.005])
    assert by["psgd_matches_tuned_sgd"]["samples"] == [0.0, 0.0]
    for claim, r in zip(dldr.declare(c), rows, strict=True):
        assert evidence.measure(claim, r["samples"]).as_dict() == r["measured"]
    # SGD that did not memorise: the control row disagrees, the robustness row is still judged
    s = _summary(
        [0.9] * 2, [0.9] * 2, [0.5] * 2, [1, 1], [2, 2], ([0.60, 0.62], [0.7] * 2, [0.6] * 2)
    )
    by = {r["id"]: r for r in dldr.judge_claims(s, c)}
    assert by["sgd_memorises_noisy_labels"]["verdict"] == "disagrees"
    assert by["robust_to_label_noise"]["verdict"] == "disagrees"  # -0.1 per seed
    # one epoch fewer on every seed: a zero-width interval widened to 1 ± 0.5, not above 0 + 1
    assert by["pbfgs_fewer_epochs"]["measured"] == {"value": 1.0, "lo": 0.5, "hi": 1.5, "n": 2}
    assert by["pbfgs_fewer_epochs"]["verdict"] == "undecided"
    # P-BFGS well above the tuned SGD is not "comparable": outside ±0.02
    s = _summary([0.95, 0.96], [0.90, 0.90], [0.5] * 2, [1, 1], [2, 2])
    rows = dldr.judge_claims(s, replace(c, label_noise=0.0))
    assert [r["id"] for r in rows] == IDS[:7]
    assert rows[2]["verdict"] == "disagrees"


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
                "40",
                "--noise-epochs",
                "40",
                "--ds",
                "70",
            ],
            "d=70 exceeds the 50 parameters",
        ),
        (["--label-noise", "1.0"], "--label-noise must be in [0, 1)"),
        (["--label-noise", "-0.1"], "--label-noise must be in [0, 1)"),
        (
            ["--sample-epochs", "2", "--samples-per-epoch", "2", "--ds", "5", "10"],
            "d=5 needs at least 2d=10 samples, the schedule gives 5",
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


def test_walk_explained_variance_against_explicit_walks(x64):
    """The random-walk reference against the PCA of explicit walks: orthonormal increments
    (the many-dimensions limit, exactly), and a long equal-step walk's first component against
    Antognini & Sohl-Dickstein's 6/π²."""
    from lazyrich.optim import dldr_subspace

    rng = np.random.default_rng(0)
    norms = rng.uniform(0.1, 2.0, 12)
    walk = np.concatenate([np.zeros((1, 12)), np.cumsum(np.diag(norms), 0)])  # (13, 12)
    walk = walk @ np.linalg.qr(rng.normal(size=(40, 12)))[0].T  # rotated into R^40
    _, ratio = dldr_subspace(walk, 3)
    cum = np.cumsum(np.asarray(ratio))
    for d in (1, 3, 6, 12):
        assert dldr.walk_explained_variance(norms, d) == pytest.approx(cum[d - 1], abs=1e-10)
    np.testing.assert_allclose(dldr.step_norms(walk[None]), norms[None], rtol=1e-12)
    assert dldr.isotropic_walk_explained_variance(13, 12) == pytest.approx(1.0, abs=1e-12)
    top1 = dldr.isotropic_walk_explained_variance(200, 1)  # → 6/π² as 1/t²
    assert top1 == pytest.approx(6 / np.pi**2, abs=5e-5)
    # a high-dimensional Gaussian walk is close to its limit (its PCA by a plain SVD)
    steps = rng.normal(size=(40, 20_000)) / np.sqrt(20_000)
    gauss = np.concatenate([np.zeros((1, 20_000)), np.cumsum(steps, 0)])
    sv = np.linalg.svd(gauss - gauss.mean(0), compute_uv=False) ** 2
    limit = dldr.walk_explained_variance(dldr.step_norms(gauss), 5)
    assert float(sv[:5].sum() / sv.sum()) == pytest.approx(limit, abs=0.02)
    with pytest.raises(ConfigError, match="d=13 must be in 1..12"):
        dldr.walk_explained_variance(norms, 13)


def test_evidence_preset_and_sizing():
    """The evidence preset samples as the authors (once per epoch, t >= 2d), with their
    P-BFGS batch and >= 5 seeds; its sizing names declared claims only, with the arithmetic."""
    c = dldr.PRESETS["evidence"]
    assert c.samples_per_epoch == 1 and dldr.num_samples(c) >= 2 * max(c.ds)
    assert c.pbfgs_batch == 1024 and len(c.seeds) >= 5
    ids = [claim.id for claim in dldr.declare(c)]
    assert ids == IDS
    per_claim, notes = dldr.sizing(c)
    assert set(per_claim) <= set(ids) and "pbfgs_matches_tuned_sgd" in per_claim
    assert all("t-width" in v and "2 × margin" in v for v in per_claim.values())
    assert notes and "wall time" in notes
    # the arithmetic: sd 0.0035 of 3 old seeds, t(0.95, n−1) over n = len(seeds)
    n = len(c.seeds)
    sd = float(np.std([-0.006, -0.0075, -0.001], ddof=1))
    width = 2 * stats.t.ppf(0.95, n - 1) * sd / np.sqrt(n)
    assert f"= {width:.3g} with {n} seeds" in per_claim["pbfgs_matches_tuned_sgd"]
