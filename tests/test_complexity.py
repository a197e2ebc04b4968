"""The complexity study (PAPERS.md §5): the ball generator, the information measures it records,
a tiny end-to-end run through the command line, and its one-line errors."""

import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from analysis import complexity as cx
from analysis.cli import main
from lazyrich import evidence
from lazyrich.data import ball, ball_labels
from lazyrich.errors import ConfigError
from lazyrich.measures import cmi, i_ly_given_f, mi, mu

TINY = [
    "--n-train", "240", "--n-test", "160", "--width", "16", "--depth", "1",
    "--cnn-channels", "4", "--cnn-dense", "8", "--steps", "60", "--batch", "24",
    "--records", "5", "--linear-steps", "200", "--stop-train-error", "0.25",
    "--permutations", "19", "--bootstrap", "5",
]  # fmt: skip
SUMMARY_KEYS = {
    "I_LY", "T0", "T_L", "mu_at_T0", "mu_final", "retention", "test_accuracy_final",
    "train_accuracy_final", "linear_test_accuracy", "linear_grad_norm", "retention_boot",
    "I_LY_given_F_final_p", "T0_test_level", "T0_permutations", "T0_significance",
    "T0_info_floor", "mu_over_I_FY_before_T_L",
}  # fmt: skip


def test_ball_noise_and_boundary():
    n = 200_000
    x, y, flipped = ball(n, noise=0.1, key=jax.random.key(3))
    x, y, flipped = np.asarray(x), np.asarray(y), np.asarray(flipped)
    assert x.shape == (n, 2) and y.dtype == np.int32
    assert x.min() >= -1 and x.max() <= 1 and np.abs(x.mean(0)).max() < 0.01  # uniform square
    # brute-force clean labels in float64 NumPy, from the documented formula
    z = x.astype(np.float64) - np.array([0.3, 0.3])
    theta = np.arctan2(z[:, 1], z[:, 0])
    clean = (np.hypot(z[:, 0], z[:, 1]) < 0.8 * (1 + 0.25 * np.sin(6 * theta))).astype(int)
    near = np.abs(np.hypot(z[:, 0], z[:, 1]) - 0.8 * (1 + 0.25 * np.sin(6 * theta))) < 1e-5
    assert np.array_equal(clean[~near], np.asarray(ball_labels(jnp.asarray(x)))[~near])
    # exactly the flipped labels differ from the clean ones; 10% ± 4 standard errors
    assert np.array_equal((y != clean)[~near], flipped[~near])
    assert abs(flipped.mean() - 0.1) < 4 * math.sqrt(0.09 / n)
    assert abs(clean.mean() - 0.47) < 0.02  # "about 47% ones"
    # points just inside / outside the boundary on the rays where sin(6θ) = ±1
    for theta0, radius in ((math.pi / 12, 1.0), (-math.pi / 12, 0.6)):
        u = np.array([math.cos(theta0), math.sin(theta0)])
        pts = jnp.asarray(np.array([0.3, 0.3]) + np.outer([radius - 0.01, radius + 0.01], u))
        np.testing.assert_array_equal(ball_labels(pts.astype(jnp.float32)), [1, 0])
    _, y0, f0 = ball(1000, noise=0.0, key=jax.random.key(4))
    assert not np.asarray(f0).any()


def test_information_matches_the_validated_measures():
    key = jax.random.key(0)
    ky, kf, kl = jax.random.split(key, 3)
    y = jax.random.bernoulli(ky, 0.4, (3000,)).astype(jnp.int32)
    noisy = lambda k, p: jnp.where(jax.random.bernoulli(k, p, y.shape), 1 - y, y)  # noqa: E731
    f, l = noisy(kf, 0.2), noisy(kl, 0.3)  # noqa: E741
    got = dict(zip(cx.MEASURES, np.asarray(cx.information(f, l, y)).tolist(), strict=True))
    assert got["test_accuracy"] == pytest.approx(float(jnp.mean(f == y)))
    assert got["I_FY"] == pytest.approx(float(mi(f, y)), abs=1e-5)
    assert got["mu"] == pytest.approx(float(mu(f, l, y)), abs=1e-5)
    assert got["I_LY_given_F"] == pytest.approx(float(i_ly_given_f(l, y, f)), abs=1e-5)
    assert got["I_FY_given_L"] == pytest.approx(float(cmi(f, y, l)), abs=1e-5)
    assert got["I_FY"] > 0.1 and got["mu"] > 0.01  # correlated: not a trivial zero


def test_t0_by_margin_rule():
    from analysis.complexity._stats import info_floor, t0_by_margin, tested_records

    n = 1000
    floor = info_floor(n, 50.0)
    assert floor == pytest.approx(50 / (n * math.log(2)), rel=1e-12)  # 0.0721 bits
    i_fy = np.array([0.001, 0.05, 0.2, 0.3, 0.4])
    cmi_mm = np.array([0.001, 0.04, 0.019, 0.031, 0.01])
    # record 0: below the floor; 1: 0.04 > 0.1·0.05 but 0.05 < floor; 2: 0.019 <= 0.02;
    # 3: 0.031 > 0.03 → T0 is record 3
    tested = tested_records(i_fy, n, 50.0)
    np.testing.assert_array_equal(tested, [2, 3, 4])
    assert t0_by_margin(cmi_mm, i_fy, tested, 0.1) == 3
    everything = tested_records(i_fy, n, 1e-9)  # no floor: record 0 (ratio 1) is T0
    assert t0_by_margin(cmi_mm, i_fy, everything, 0.1) == 0
    assert t0_by_margin(0.05 * i_fy, i_fy, tested, 0.1) is None  # L explains 95% throughout


def test_tiny_run_end_to_end(tmp_path):
    assert main(["run", "complexity", *TINY, "--out", str(tmp_path)]) == 0
    out = tmp_path / "complexity"
    summary = json.loads((out / "summary.json").read_text())
    runs = [("mnist1d", "mlp"), ("mnist1d", "cnn"), ("ball", "mlp")]
    with xr.open_dataset(out / "results.nc", engine="scipy") as ds:
        ds = ds.load()
    assert list(ds.run.values) == [f"{t}/{n}/0" for t, n in runs]
    assert summary["skipped"] == ["ball/cnn: inputs (2,) are not a sequence/image"]
    for i, (task, net) in enumerate(runs):
        s = summary[task][net]["0"]
        assert SUMMARY_KEYS <= set(s)
        r = ds.isel(run=i)
        ok = np.isfinite(r.step.values)
        step, tr = r.step.values[ok], r.train_accuracy.values[ok]
        i_fy, mu_, i_ly_f = r.I_FY.values[ok], r.mu.values[ok], r.I_LY_given_F.values[ok]
        # co-information identities: μ = I(F;Y) − I(F;Y|L) = I(L;Y) − I(L;Y|F), μ ≤ min(...)
        np.testing.assert_allclose(mu_, i_fy - r.I_FY_given_L.values[ok], atol=1e-5)
        np.testing.assert_allclose(mu_, s["I_LY"] - i_ly_f, atol=1e-5)
        assert np.all(mu_ <= np.minimum(i_fy, s["I_LY"]) + 1e-5)
        # the summary is the last record, T0 follows its documented rule
        assert s["mu_final"] == pytest.approx(mu_[-1])
        assert s["retention"] == pytest.approx(mu_[-1] / s["I_LY"])
        assert s["train_accuracy_final"] == pytest.approx(tr[-1])
        assert s["test_accuracy_final"] == pytest.approx(r.test_accuracy.values[ok][-1])
        # T0: the first record above the floor where Miller–Madow I(F;Y|L) > 0.1·I(F;Y)
        p, mm = r.p_value.values[ok], r.I_FY_given_L_mm.values[ok]
        tested = np.isfinite(p)
        floor = 50 / (160 * math.log(2))
        assert s["T0_info_floor"] == pytest.approx(floor, rel=1e-12)
        np.testing.assert_array_equal(tested, (i_fy >= floor) & (i_fy > 0))
        hits = np.nonzero(tested & (mm > 0.1 * i_fy))[0]
        assert s["T0"] == (int(step[hits[0]]) if hits.size else None)
        # the significance test's T0 is reported: its first rejection at the Bonferroni level
        rejects = np.nonzero(p <= s["T0_test_level"])[0]
        assert s["T0_significance"] == (int(step[rejects[0]]) if rejects.size else None)
        before_tl = np.nonzero(i_fy[: reach_index(r, s)] > 0)[0]
        want = mu_[before_tl].sum() / i_fy[before_tl].sum() if before_tl.size else None
        assert s["mu_over_I_FY_before_T_L"] == (None if want is None else pytest.approx(want))
        assert s["T0_test_level"] == pytest.approx(0.05 / max(tested.sum(), 1))
        assert s["T0_permutations"] >= math.ceil(max(tested.sum(), 1) / 0.05)
        reach = np.nonzero(r.test_accuracy.values[ok] >= s["linear_test_accuracy"])[0]
        assert s["T_L"] == (int(step[reach[0]]) if reach.size else None)
        # training stops at the first record with train error <= 0.25, else at the step cap
        # (the training set is evaluated at epoch ends and the last record only)
        early = tr[:-1][np.isfinite(tr[:-1])]
        assert np.all(1 - early > 0.25) and np.isfinite(tr[-1])
        if s["zero_error_step"] is None:
            assert step[-1] == 60 and 1 - tr[-1] > 0.25
        else:
            assert s["zero_error_step"] == step[-1] and 1 - tr[-1] <= 0.25
        assert 0.5 <= s["linear_test_accuracy"] <= 1
        for fig in ("info", "accuracy"):
            assert (out / "figures" / f"{fig}_{task}_{net}.png").stat().st_size > 1000
    # epoch ends (every 240 // 24 = 10 steps) are recorded until training stops
    step = ds.isel(run=2).step.values
    step = step[np.isfinite(step)]
    assert set(np.arange(10, step[-1] + 1, 10)) <= set(step)
    # the claims: the declared ones, in order, each judged from its per-run values (units.nc)
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                          for k, v in json.loads((out / "config.json").read_text()).items()
                          if k in cx.Config.__dataclass_fields__}  # fmt: skip
    config = cx.Config(**kw)
    declared = cx.declare(config)
    rows = summary["claims"]
    assert [r["id"] for r in rows] == [c.id for c in declared]
    assert len(rows) == 8 and {r["verdict"] for r in rows} == {"smoke"}  # the quick preset
    assert [r["id"] for r in rows[:4]] == [
        "explained-before-T0-mnist1d", "explained-before-T_L-mnist1d",  # the control row next
        "T0-near-T_L-mnist1d", "retention-mnist1d",
    ]  # fmt: skip
    units = evidence.read_units(out / evidence.UNITS_FILE)
    for claim, row in zip(declared, rows, strict=True):
        m = evidence.measure(claim, units[row["id"]]).as_dict()
        for k in ("value", "lo", "hi"):
            assert (m[k] is None) == (row["measured"][k] is None)
            if m[k] is not None:
                assert row["measured"][k] == pytest.approx(m[k], rel=1e-12)
        assert m["n"] == row["measured"]["n"] and row["margin"] == claim.margin
    # per-run values: one per network × seed of the task, in run order
    for task, nets in (("mnist1d", ("mlp", "cnn")), ("ball", ("mlp",))):
        runs = [summary[task][n]["0"] for n in nets]
        frac = [r["I_LY_given_F_final_mm"] / r["I_LY"] for r in runs]
        np.testing.assert_allclose(units[f"retention-{task}"], frac, rtol=1e-12)
        got = units[f"explained-before-T_L-{task}"]
        want = [np.nan if r["mu_over_I_FY_before_T_L"] is None else r["mu_over_I_FY_before_T_L"]
                for r in runs]  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-12)


def reach_index(r, s) -> int:
    """The record index of T_L in run `r` (every record when F_t never reaches L)."""
    acc = r.test_accuracy.values[np.isfinite(r.step.values)]
    hits = np.nonzero(acc >= s["linear_test_accuracy"])[0]
    return int(hits[0]) if hits.size else acc.size


def _fake_mnist(root, n_train=30, n_test=12):
    rng = np.random.default_rng(0)
    labels = {"train": rng.integers(0, 10, n_train), "t10k": rng.integers(0, 10, n_test)}
    (root / "mnist").mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels[split])):
            arr = np.asarray(arr, np.uint8)
            head = bytes([0, 0, 8, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
            (root / "mnist" / f"{split}-{kind}-ubyte").write_bytes(head + arr.tobytes())
    return labels


def test_file_task_is_binary_and_capped(tmp_path, monkeypatch):
    labels = _fake_mnist(tmp_path)
    monkeypatch.setenv("LAZYRICH_DATA", str(tmp_path))
    config = cx.Config(tasks=("mnist",), n_train=1000, n_test=5, batch=8)
    cx.validate(config)
    data = cx.load_task(config, "mnist")
    assert data.n_train == 30 and data.n_test == 5  # capped at the files, cut to n_test
    np.testing.assert_array_equal(data.y_train, labels["train"] > 4)
    np.testing.assert_array_equal(data.y_test, labels["t10k"][:5] > 4)
    assert data.input_shape == (28, 28, 1) and cx.cnn_applies(data)
    net = cx.make_network(config, "cnn", data, key=jax.random.key(0))
    assert net(data.x_test).shape == (5, 2)


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--width", "0"], "--width must be >= 1"),
        (["--width", "-3"], "--width must be >= 1"),
        (["--cnn-channels", "0"], "--cnn-channels must be >= 1"),
        (["--tasks", "imagenet"], "unknown task 'imagenet'"),
        (["--networks", "rnn"], "unknown network 'rnn'"),
        (["--lr", "0"], "--lr must be a finite number > 0"),
        (["--lr-ball", "-1"], "--lr-ball must be a finite number >= 0"),
        (["--batch", "5000"], "--batch 5000 exceeds --n-train 4000"),
        (["--ball-noise", "0.7"], "--ball-noise must be in [0, 0.5)"),
        (["--permutations", "0"], "--permutations must be >= 1"),
        (["--alpha", "1"], "--alpha 1.0 is not a significance level"),
        (["--alpha", "0"], "--alpha 0.0 is not a significance level"),
        (["--n-seeds", "0"], "--n-seeds must be >= 1"),
        (["--preset", "paper", "--data-dir", "EMPTY"], "MNIST file train-images-idx3-ubyte"),
        (["--preset", "paper"], "no data directory: pass --data-dir DIR"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, text):
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    argv = [str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    out = tmp_path / "out"
    code = main(["run", "complexity", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert text in err, err
    assert not out.exists()  # nothing written for a bad option


def test_data_dir_is_explicit(tmp_path, monkeypatch):
    """`data_dir` in the Config is used without LAZYRICH_DATA (and wins over it)."""
    _fake_mnist(tmp_path)
    monkeypatch.setenv("LAZYRICH_DATA", str(tmp_path / "nowhere"))
    config = cx.Config(tasks=("mnist",), n_train=1000, n_test=5, batch=8, data_dir=str(tmp_path))
    cx.validate(config)
    assert cx.load_task(config, "mnist").n_train == 30


def test_t0_test_oracle():
    """A prediction that copies L is explained (no rejection); one that copies Y is not."""
    from analysis.complexity._stats import t0_test, tested_records

    key = jax.random.key(0)
    n = 2000
    y = jax.random.bernoulli(key, 0.5, (n,)).astype(jnp.int32)
    flip = lambda k, q: (y ^ jax.random.bernoulli(jax.random.key(k), q, (n,))).astype(jnp.int32)  # noqa: E731
    l = flip(1, 0.25)  # noqa: E741
    preds = np.stack([np.asarray(l), np.asarray(l), np.asarray(flip(2, 0.05))])
    i_fy = np.array([0.19, 0.19, 0.7])
    tested = tested_records(i_fy, n, 50.0)  # floor 50/(2000 ln 2) = 0.036 bits
    np.testing.assert_array_equal(tested, [0, 1, 2])
    out = t0_test(preds, l, y, tested, alpha=0.05, permutations=10, key=key)
    assert out["permutations"] == 60 and out["level"] == pytest.approx(0.05 / 3)
    assert out["t0"] == 2 and out["p"][0] > 0.5


def test_validate_raises_config_error():
    with pytest.raises(ConfigError, match="lists a task twice"):
        cx.validate(cx.Config(tasks=("ball", "ball")))


def test_t0_note_states_where_t0_sits():
    from types import SimpleNamespace

    from analysis.complexity.claims import _at_t0

    runs = [
        {"mu_at_T0": 0.8, "I_FY_at_T0": 1.0, "I_LY": 2.0},
        {"mu_at_T0": 0.5, "I_FY_at_T0": 1.0, "I_LY": 1.25},
        {"mu_at_T0": None, "I_FY_at_T0": None, "I_LY": 1.0},
    ]
    text = _at_t0(runs, SimpleNamespace(t0_floor=50.0))
    assert "μ/I(F;Y) is 0.50–0.80" in text and "I(F;Y)/I(L;Y) 0.50–0.80" in text
    assert _at_t0(runs[2:], SimpleNamespace(t0_floor=50.0)) == ""


def test_records_before_t0_include_the_untested_ones():
    """Claim 1 looks at every record before T0 with I(F;Y) > 0, not only the tested ones."""
    from analysis.complexity._stats import records_before

    i_fy = np.array([0.0, 0.01, 0.02, 0.3, 0.4])
    np.testing.assert_array_equal(records_before(i_fy, 3), [1, 2])
    np.testing.assert_array_equal(records_before(i_fy, None), [1, 2, 3, 4])
    assert records_before(i_fy, 0).size == 0


def test_analyse_measures_explained_share_below_the_test_floor():
    """F_t = L on a growing share of the points (random labels elsewhere) is explained by L
    (I(F;Y|L) = 0 in population), then F_t = Y is not: T0 is the last record (the explained
    records above the floor do not trigger the 10% rule), and Σμ/ΣI(F;Y) before it is ≈ 1."""
    from analysis.complexity.run import analyse, information
    from lazyrich.measures import joint_counts, mutual_information

    n = 4000
    ks = jax.random.split(jax.random.key(3), 8)
    y = jax.random.bernoulli(ks[0], 0.5, (n,)).astype(jnp.int32)
    l = (y ^ jax.random.bernoulli(ks[1], 0.2, (n,))).astype(jnp.int32)  # noqa: E741
    rows = []
    for i, share in enumerate((0.0, 0.3, 0.6, 1.0)):
        keep = jax.random.bernoulli(ks[2 + i], share, (n,))
        coin = jax.random.bernoulli(ks[6], 0.5, (n,)).astype(jnp.int32)
        rows.append(np.asarray(jnp.where(keep, l, coin)))
    rows.append(np.asarray(y))
    preds = np.stack(rows).astype(np.int32)
    values = np.stack([np.asarray(information(jnp.asarray(f), l, y)) for f in preds])
    h = {"preds": preds, "step": np.arange(1.0, 6.0), "train_accuracy": np.full(5, 0.5),
         "test_accuracy": values[:, 0], "I_FY": values[:, 1], "mu": values[:, 2],
         "I_LY_given_F": values[:, 3]}  # fmt: skip
    i_ly = float(mutual_information(joint_counts(l, y, num_values=2)))
    c = cx.Config(permutations=99, bootstrap=50)
    s = analyse(h, i_ly, 0.8, 0.8, l, y, c, key=ks[7])
    assert s["T0"] == 5
    assert 3 <= s["records_before_T0"] <= 4  # the share-0 record may carry a trace of information
    assert s["T0_info_floor"] == pytest.approx(50 / (n * math.log(2)))
    assert int(np.sum(h["I_FY"][:4] >= s["T0_info_floor"])) >= 2  # looked at, not T0
    # F_t = L (record 4) reaches L's accuracy 0.8: the records before T_L are explained too
    assert s["T_L"] == 4 and s["mu_over_I_FY_before_T_L"] == pytest.approx(1.0, abs=0.03)
    assert s["mu_over_I_FY_before_T0"] == pytest.approx(1.0, abs=0.03)
    lo, hi = s["mu_over_I_FY_before_T0_boot"]
    assert lo <= s["mu_over_I_FY_before_T0"] + 1e-6 and hi >= 0.95


def _run_summary(ratio, t0, tl, retention, mm, i_ly=0.5):
    return {"mu_over_I_FY_before_T0": ratio, "records_before_T0": 3, "mu_at_T0": None,
            "I_FY_at_T0": None, "I_LY": i_ly, "T0": t0, "T_L": tl, "records_before_T_L": 4,
            "T0_over_T_L": None if t0 is None or tl is None else t0 / tl,
            "zero_error_step": 100, "train_accuracy_final": 1.0, "retention": retention,
            "retention_boot": [retention - 0.01, retention], "I_LY_given_F_final_mm": mm,
            "I_LY_given_F_final_p": 0.5, "mu_over_I_FY_before_T_L": ratio - 0.1,
            "records_before_T_L_informative": 4, "T0_significance": 1}  # fmt: skip


def test_claims_are_judged_over_runs_with_their_margins():
    """Per-run values go to the claims (one per network × seed, in order); the verdict follows
    the interval over runs against theory ± margin; T0 never is a run not measured."""
    c = cx.Config(tasks=("ball",), networks=("mlp", "cnn"), n_seeds=3)
    runs = {
        "0": _run_summary(0.97, 80, 100, 0.98, 0.004),
        "1": _run_summary(0.95, 100, 100, 0.97, 0.006),
        "2": _run_summary(0.96, None, 100, 0.985, 0.2),
    }
    rows = cx.claims({"ball": {"mlp": runs}}, c)
    assert [r["id"] for r in rows] == [d.id for d in cx.declare(c)] == [
        "explained-before-T0-ball", "explained-before-T_L-ball", "T0-near-T_L-ball",
        "retention-ball",
    ]  # fmt: skip
    by = {r["id"]: r for r in rows}
    assert all(r["unit"] == "run" and r["figure"] == "figures/info_ball_mlp.png" for r in rows)
    assert by["explained-before-T0-ball"]["samples"] == [0.97, 0.95, 0.96]
    # t interval of (0.97, 0.95, 0.96): 0.96 ± 2.92·0.01/√3, inside 1 ± 0.1
    lo = 0.96 - 2.919986 * 0.01 / math.sqrt(3)
    assert by["explained-before-T0-ball"]["measured"]["lo"] == pytest.approx(lo, abs=1e-6)
    assert by["explained-before-T0-ball"]["verdict"] == "agrees"
    # the control row: the same ratio before T_L (0.87, 0.85, 0.86): entirely below 0.9
    control = by["explained-before-T_L-ball"]
    assert control["samples"] == pytest.approx([0.87, 0.85, 0.86])
    assert control["verdict"] == "disagrees" and control["margin"] == 0.1
    t = by["T0-near-T_L-ball"]
    assert t["samples"][:2] == pytest.approx([math.log2(0.8), 0.0]) and math.isnan(t["samples"][2])
    assert t["measured"]["n"] == 2 and "T0 never" in t["note"] and "/(n ln 2)" in t["reason"]
    assert "0.1·I(F_t;Y)" in t["reason"]
    # retention: I(L;Y|F_final)/I(L;Y); one run leaves 40% of I(L;Y): the wide interval over
    # runs decides nothing
    frac = by["retention-ball"]
    assert frac["samples"] == pytest.approx([0.008, 0.012, 0.4])
    assert frac["verdict"] == "undecided" and frac["margin"] == 0.1
    good = {k: {**v, "I_LY_given_F_final_mm": 0.002 + 0.001 * int(k)} for k, v in runs.items()}
    assert cx.claims({"ball": {"mlp": good}}, c)[3]["verdict"] == "agrees"  # < 1% of I(L;Y)
    # every run far outside the band: disagrees
    bad = {k: {**v, "I_LY_given_F_final_mm": 0.2 + 0.01 * int(k)} for k, v in runs.items()}
    row = cx.claims({"ball": {"mlp": bad}}, c)[3]
    assert row["verdict"] == "disagrees" and row["measured"]["lo"] > 0.1
    # a task without runs: its claims are still rows, not measured
    empty = cx.claims({}, c)
    assert [r["measured"]["n"] for r in empty] == [0, 0, 0, 0]
    assert {r["verdict"] for r in empty} == {"undecided"}
    assert cx.declare(cx.Config(tasks=("ball",), networks=("cnn",))) == []


def test_sizing_names_the_declared_claims_and_five_runs_per_task():
    c = cx.PRESETS["evidence"]
    sizes, notes = cx.sizing(c)
    declared = [d.id for d in cx.declare(c)]
    assert list(sizes) == declared and len(declared) == 4 * len(c.tasks)
    assert c.n_seeds >= 5  # the ball runs one network: n_seeds runs
    assert "with 6 runs (1 network(s) × 6 seeds)" in sizes["retention-ball"]
    assert "against 2 × margin = 0.2" in sizes["explained-before-T_L-mnist"]
    assert notes and "25 min" in notes and "0.5·I(L;Y)" in notes
