"""The exact-gn study: a tiny end-to-end run, its claims (declared from the config, per seed,
judged by `lazyrich.evidence`), the matched-train-loss comparison and the per-step loss-change
measure against direct computations, and its one-line errors (exit code 2)."""

import dataclasses
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

from analysis import exact_gn
from analysis.cli import main
from lazyrich import evidence
from lazyrich.data import epoch_batches
from lazyrich.errors import ConfigError
from lazyrich.models import RevMLP, functional
from lazyrich.optim import exact_gauss_newton
from lazyrich.train import mse

pytestmark = pytest.mark.cost(120)  # seconds, loaded 2-core machine: scheduled first

OPTS = ("gn", "adam", "sgd")
IDS = [
    "full_batch_gn_fewer_epochs",
    "matched_train_losses_agree",
    "gn_generalises_worse_at_matched_loss",
    "gn_lazier_ntk_at_matched_loss",
    "gn_lazier_cka_at_matched_loss",
    "mini_batch_gn_step_fits_its_batch",
    "mini_batch_gn_saturates",
]
TINY = [
    "--n-train", "64", "--n-test", "40", "--hidden", "48", "--full-batch", "32", "--batch", "16",
    "--epochs", "3", "--probe", "8", "--measure-every", "2", "--seeds", "2",
    "--adam-grid", "1e-3", "--settings", "full", "mini", "rank", "--rank-batch", "16",
    "--match", "nearest",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "exact-gn", *TINY, "--out", str(out)]) == 0
    return out / "exact-gn"


def test_end_to_end(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    assert list(ds.setting.values) == ["full", "mini", "rank"]
    assert list(ds.optimizer.values) == ["gn", "adam", "sgd", "adam_paper", "sgd_paper", "gn_relu"]
    assert list(ds.seed.values) == [0, 1]
    assert ds.train_loss.shape == (3, 6, 2, 4)  # epochs 0..3
    assert list(ds.measure_epoch.values) == [0, 2, 3]
    assert ds.cka.shape == (3, 6, 2, 3, 2)
    # one step per epoch on the full batch, 64 // 16 = 4 steps per epoch on mini-batches
    assert list(ds.steps_per_epoch.values) == [1, 4, 1]
    # the Adam grid: the paper's 1e-4 and 1e-3; tuned = the lower seed-mean final train loss
    tuned = ds.tune_final_train_loss.sel(tune_optimizer="adam").values.mean(-1)
    assert list(ds.tune_lr.sel(tune_optimizer="adam").values) == pytest.approx([1e-4, 1e-3])
    assert float(ds.lr.sel(setting="full", optimizer="adam")) == pytest.approx(
        [1e-4, 1e-3][int(np.argmin(tuned))]
    )
    assert float(ds.lr.sel(setting="full", optimizer="adam_paper")) == pytest.approx(1e-4)
    assert float(ds.lr.sel(setting="mini", optimizer="adam")) == pytest.approx(1e-4)
    # the tuned run's records are the grid run's: final train loss = the grid's entry
    k = int(np.argmin(tuned))
    np.testing.assert_allclose(
        ds.train_loss.sel(setting="full", optimizer="adam").values[:, -1],
        ds.tune_final_train_loss.sel(tune_optimizer="adam").values[k],
        rtol=1e-12,
    )
    # the rank setting runs GN only; absent runs are NaN
    assert np.isnan(ds.train_loss.sel(setting="rank", optimizer="adam").values).all()
    assert np.isnan(ds.train_loss.sel(setting="full", optimizer="gn_relu").values).all()
    # gn_fit: 16 examples, d/2 + 1 = 21 >= 16 and h + 1 = 49 >= 16: every half-layer has full
    # row rank, so J Δθ_raw = L ε (fit 1); full batch of 32 > 21: the linear block falls short
    fit = ds.gn_fit.values
    np.testing.assert_allclose(fit[2, [0, 5]], 1.0, atol=2e-3)
    assert (fit[0, 0] < 0.99).all()
    assert np.isnan(fit[1]).all()
    change = ds.batch_loss_change.values
    assert np.isfinite(change[1, :3]).all() and np.isfinite(change[0, :3, :, :3]).all()
    assert np.isnan(change[0, :3, :, 3:]).all()
    # at init every optimizer of a seed has the same model: same losses, NTK similarity 1
    for si, n_opt in ((0, 5), (1, 3)):  # mini runs gn, adam, sgd only
        init = ds.train_loss.values[si, :n_opt, :, 0]
        np.testing.assert_allclose(init, np.broadcast_to(init[:1], init.shape), rtol=1e-6)
        assert not np.allclose(init[:, 0], init[:, 1])  # two seeds, two initialisations
        np.testing.assert_allclose(ds.ntk_similarity.values[si, :n_opt, :, 0], 1.0, atol=1e-5)
        np.testing.assert_allclose(ds.kernel_distance.values[si, :n_opt, :, 0], 0.0, atol=1e-5)
        np.testing.assert_allclose(ds.cka.values[si, :n_opt, :, 0], 1.0, atol=1e-5)
    assert np.isnan(ds.train_loss.sel(setting="mini", optimizer="adam_paper").values).all()

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["study"] == "exact-gn" and summary["preset"] == "quick"
    keys = {
        "final_train_loss", "final_test_loss", "final_test_accuracy", "epochs_to_train_loss",
        "mean_batch_loss_drop", "ntk_similarity_final", "kernel_distance_final", "lr",
    }  # fmt: skip
    for s in ("full", "mini"):
        for o in ("gn", "adam", "sgd"):
            r = summary[s][o]
            assert keys <= set(r)
            assert r["mean_batch_loss_drop"] == pytest.approx(
                -np.nanmean(ds.batch_loss_change.sel(setting=s, optimizer=o).values), rel=1e-6
            )
    ids = [c["id"] for c in summary["claims"]]
    assert ids == [c.id for c in exact_gn.declare(_config(tiny_run))] == IDS
    assert all(c["verdict"] == "smoke" and c["unit"] == "seed" for c in summary["claims"])
    # each row's interval is the evidence interval of its per-seed values (units.nc)
    units = evidence.read_units(tiny_run / evidence.UNITS_FILE)
    for claim, row in zip(exact_gn.declare(_config(tiny_run)), summary["claims"], strict=True):
        assert len(units[claim.id]) == 2  # one value per seed
        assert evidence.measure(claim, units[claim.id]).as_dict() == row["measured"]
        assert (row["theory"], row["margin"], row["kind"]) == (
            claim.theory,
            claim.margin,
            claim.kind,
        )
    for fig in ("curves", "batch_loss_drop", "ntk_cka", "ntk_cka_vs_loss"):
        assert (tiny_run / "figures" / f"{fig}.png").stat().st_size > 1000
    # the report picks the study up and accepts its claims
    assert main(["report", "--out", str(tiny_run.parent)]) == 0
    assert "exact-gn/figures/curves.png" in (tiny_run.parent / "report.html").read_text()


def test_claims_recomputed_from_results(tiny_run):
    """Claim 1's per-seed epochs and the per-seed saturation ratio by hand from results.nc,
    and their intervals (t with n − 1 dof)."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    summary = json.loads((tiny_run / "summary.json").read_text())
    claims = {c["id"]: c for c in summary["claims"]}
    units = evidence.read_units(tiny_run / evidence.UNITS_FILE)
    diffs = []
    for k in range(2):
        tl = {o: ds.train_loss.sel(setting="full", optimizer=o).values[k] for o in OPTS}
        ep = {}
        for o in OPTS:
            hit = [e for e in range(4) if tl[o][e] <= 0.1 * tl[o][0]]
            ep[o] = hit[0] if hit else 4
        diffs.append(min(ep["adam"], ep["sgd"]) - ep["gn"])
    assert units["full_batch_gn_fewer_epochs"] == diffs
    m = claims["full_batch_gn_fewer_epochs"]["measured"]
    half = max(np.std(diffs, ddof=1) / np.sqrt(2) * 6.313751514675, 0.5)  # t_{0.95, 1}; ≥ 1/2
    assert m["value"] == pytest.approx(np.mean(diffs))
    assert m["lo"] == pytest.approx(np.mean(diffs) - half)
    ratio = []
    for k in range(2):
        tl = ds.train_loss.sel(setting="mini", optimizer="gn").values[k]
        ch = ds.batch_loss_change.sel(setting="mini", optimizer="gn").values[k]
        full = 1 - (tl[3] / tl[1]) ** (1 / 8)
        ratio.append(full / -np.mean(ch[4:12]))
    assert units["mini_batch_gn_saturates"] == pytest.approx(ratio, rel=1e-9)
    drops = [-np.mean(ds.batch_loss_change.sel(setting="mini", optimizer="gn").values[k, 4:12])
             for k in range(2)]  # fmt: skip
    assert units["mini_batch_gn_step_fits_its_batch"] == pytest.approx(drops, rel=1e-9)
    m = claims["mini_batch_gn_saturates"]["measured"]
    assert m["value"] == pytest.approx(np.mean(ratio), rel=1e-9)
    half = np.std(ratio, ddof=1) / np.sqrt(2) * 6.313751514675
    assert m["hi"] == pytest.approx(np.mean(ratio) + half, rel=1e-9)


def test_declared_claims_follow_the_settings_and_optimizers():
    # the interpolated match (the default) swaps the nearest match's control row for two span
    # controls, each right before the rows it controls (tests/test_exact_gn_match.py)
    interpolated = [c.id for c in exact_gn.declare(exact_gn.PRESETS["quick"])]
    assert interpolated == [IDS[0], "matched_gap_interpolation_span", IDS[2],
                            "matched_similarity_interpolation_span", *IDS[3:]]  # fmt: skip
    quick = dataclasses.replace(exact_gn.PRESETS["quick"], match="nearest")
    assert [c.id for c in exact_gn.declare(quick)] == IDS
    assert [c.id for c in exact_gn.declare(exact_gn.PRESETS["evidence"])] == IDS
    only_mini = dataclasses.replace(quick, settings=("mini",))
    assert [c.id for c in exact_gn.declare(only_mini)] == IDS[5:]
    no_adam = dataclasses.replace(quick, optimizers=("gn", "sgd"))
    assert [c.id for c in exact_gn.declare(no_adam)] == [*IDS[:3], *IDS[5:]]
    # the control row sits before the matched claims it controls
    ids = [c.id for c in exact_gn.declare(quick)]
    assert ids.index("matched_train_losses_agree") + 1 == ids.index(
        "gn_generalises_worse_at_matched_loss"
    )
    assert exact_gn.declare(dataclasses.replace(quick, optimizers=("adam", "sgd"))) == []
    sat = exact_gn.declare(dataclasses.replace(quick, plateau_tol=0.2))[-1]
    assert (sat.kind, sat.theory, sat.margin) == ("below", 0.2, pytest.approx(0.04))
    for c in exact_gn.declare(quick):
        assert c.reason and c.unit == "seed" and str(c.figure).startswith("figures/")


def test_presets_follow_the_authors():
    for name in ("evidence", "paper", "paper-cifar10"):
        c = exact_gn.PRESETS[name]
        assert c.loss == "ce" and c.normalize == "none" and c.full_batch == 1024
    assert exact_gn.PRESETS["quick"].normalize == "blocks"  # the former convention
    ev = exact_gn.PRESETS["evidence"]
    assert (ev.n_train, ev.n_test, ev.hidden, ev.blocks) == (8000, 2000, 1024, 2)
    assert ev.seeds >= 5 and (ev.batch, ev.gn_lr_mini) == (1000, 0.1)  # the paper's mini-batch
    per_claim, notes = exact_gn.sizing(ev)
    assert set(per_claim) == {c.id for c in exact_gn.declare(ev)}
    assert all("2 × margin" in v or "2%" in v or "mean" in v for v in per_claim.values())
    assert notes and "wall time" in notes and "CPU-s" in notes


def _config(run_dir) -> exact_gn.Config:
    config = json.loads((run_dir / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(exact_gn.Config)}
    kw: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in fields
    }
    return exact_gn.Config(**kw)


def test_matched_train_loss_is_the_measure_closest_to_the_level(tiny_run):
    """The matched comparison, redone by brute force from results.nc per seed: the level is the
    highest of the optimizers' lowest measured train losses (epochs >= 1), and each optimizer's
    matched values are those recorded at its measured epoch >= 1 whose train loss is closest
    to it, if within 2% of it; the matched claims' per-seed values are differences of those."""
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    summary = json.loads((tiny_run / "summary.json").read_text())
    matched = summary["matched_train_loss"]
    units = evidence.read_units(tiny_run / evidence.UNITS_FILE)
    me = [int(e) for e in ds.measure_epoch.values]
    later = [j for j in range(len(me)) if me[j] >= 1]
    found, worst = {}, {}
    for s in ("full", "mini"):
        for k in range(2):
            r = ds.sel(setting=s).isel(seed=k)
            loss = {o: [float(r.train_loss.sel(optimizer=o, epoch=e)) for e in me] for o in OPTS}
            lowest = _lowest_common_level([[loss[o][j] for j in later] for o in OPTS])
            got_s = matched[s][k]
            level = got_s["level"]
            dist = {o: min(abs(loss[o][j] / level - 1) for j in later) for o in OPTS}
            assert got_s["worst_mismatch"] == pytest.approx(max(dist.values()), rel=1e-9)
            if lowest is not None:  # the lowest level with every optimizer within 2%
                assert lowest * (1 - 1e-12) <= level <= lowest * 1.002
                assert max(dist.values()) <= 0.02
            else:  # none exists: the level that brings the worst optimizer closest
                assert max(dist.values()) > 0.02
            worst[s, k] = max(dist.values())
            for o in OPTS:
                j = min(later, key=lambda j, o=o: abs(loss[o][j] / level - 1))
                got = got_s[o]
                if abs(loss[o][j] / level - 1) > 0.02:
                    assert got.startswith("never within 2% of the level"), got
                    found[s, k, o] = None
                    continue
                assert got["epoch"] == me[j] and got["train_loss"] == loss[o][j]
                ro = r.sel(optimizer=o, measure_epoch=me[j])
                assert got["ntk_similarity"] == pytest.approx(float(ro.ntk_similarity), rel=1e-12)
                assert got["cka"] == pytest.approx([float(v) for v in ro.cka.values], rel=1e-12)
                acc = [float(r[v].sel(optimizer=o, epoch=me[j])) for v in ("train_accuracy",
                       "test_accuracy")]  # fmt: skip
                assert [got["train_accuracy"], got["test_accuracy"]] == pytest.approx(acc)
                found[s, k, o] = got
    # the control row: per seed, the worst optimizer's distance from the level
    np.testing.assert_allclose(
        units["matched_train_losses_agree"], [worst["full", k] for k in range(2)], rtol=1e-9
    )

    def diff(key, agg=lambda v: float(np.mean(v))):
        f = [found["full", k, o] for k in range(2) for o in ("gn", "adam")]
        return [np.nan if a is None or b is None else agg(a[key]) - agg(b[key])
                for a, b in zip(f[::2], f[1::2], strict=True)]  # fmt: skip

    np.testing.assert_allclose(units["gn_lazier_ntk_at_matched_loss"], diff("ntk_similarity"))
    np.testing.assert_allclose(units["gn_lazier_cka_at_matched_loss"], diff("cka"))
    gaps = []
    for k in range(2):
        g = {
            o: np.nan if found["full", k, o] is None
            else found["full", k, o]["train_accuracy"] - found["full", k, o]["test_accuracy"]
            for o in OPTS
        }  # fmt: skip
        base = [g[o] for o in ("adam", "sgd") if np.isfinite(g[o])]
        gaps.append(g["gn"] - min(base) if base else np.nan)
    np.testing.assert_allclose(units["gn_generalises_worse_at_matched_loss"], gaps)

    # a fixed fraction of the initial loss that no optimizer reaches: said in words, no number
    c = dataclasses.replace(_config(tiny_run), match_fraction=1e-6)
    unreached = exact_gn.summarize(ds, c)
    assert "1e-06" in unreached["matched_train_loss"]["rule"]
    for m in unreached["matched_train_loss"]["full"]:
        for o in OPTS:
            assert m[o].startswith("never within 2% of the level")
    rows = {r["id"]: r for r in exact_gn.judge_claims(ds, unreached, c)}
    row = rows["gn_lazier_ntk_at_matched_loss"]
    assert row["measured"]["n"] == 0 and row["verdict"] == "undecided"
    assert all(np.isnan(v) for v in row["samples"])


def _lowest_common_level(losses: list[list[float]], tol: float = 0.02) -> float | None:
    """Brute force: the lowest level L with, for every optimizer, a loss l with |l/L − 1| <=
    tol (L lies in [l/(1+tol), l/(1−tol)]; the lowest such L is a left end l/(1+tol))."""
    ok = [
        x / (1 + tol)
        for v in losses
        for x in v
        if all(any(abs(y / (x / (1 + tol)) - 1) <= tol * (1 + 1e-9) for y in w) for w in losses)
    ]
    return min(ok) if ok else None


def test_common_level_against_brute_force():
    """The level search on made-up loss curves: the lowest level with every optimizer within
    2% (brute force over the intervals' ends), or, where none exists, the minimax level."""
    rng = np.random.default_rng(0)
    for trial in range(25):
        losses = {
            o: np.exp(-np.cumsum(rng.uniform(0.02, 0.3, 12))) * rng.uniform(1.5, 2.5) for o in OPTS
        }
        level = exact_gn.common_level(losses)
        lowest = _lowest_common_level([list(v) for v in losses.values()])
        dist = exact_gn.mismatch(losses, level)
        if lowest is not None:
            assert lowest * (1 - 1e-12) <= level <= lowest * 1.002, trial
            assert max(dist.values()) <= 0.02
        else:
            assert max(dist.values()) > 0.02
            grid = np.geomspace(0.01, 3, 4000)  # spacing 0.14%
            best = min(max(exact_gn.mismatch(losses, g).values()) for g in grid)
            assert max(dist.values()) <= best + 2e-3
    # an optimizer without a finite loss: no level
    assert np.isnan(exact_gn.common_level({"gn": np.array([np.nan]), "adam": np.ones(2)}))


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
                upd, state = opt.update(None, state, p, x=xb, y=yb)  # pyright: ignore[reportArgumentType]
            else:
                g = jax.grad(lambda q, xb=xb, yb=yb: mse(apply(q, xb), yb))(p)
                upd, state = opt.update(g, state, p)
            p = optax.apply_updates(p, upd)
            after = float(jnp.mean((apply(p, xb) - yh) ** 2))
            got = float(ds.batch_loss_change.sel(setting="mini", optimizer=name).values[0, t])
            assert got == pytest.approx((after - before) / before, rel=2e-3, abs=1e-6)
    # the GN steps really fit their batch (a drop of tens of percent), Adam's barely move it
    gn = ds.batch_loss_change.sel(setting="mini", optimizer="gn").values[0]
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
        (["--normalize", "sum"], "--normalize 'sum' is unknown: pass one of blocks|fit|none"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--adam-grid", "0.1", "-1"], "--adam-grid must be finite numbers > 0"),
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


def _write_idx(path, arr):
    import gzip
    import struct

    arr = np.asarray(arr, np.uint8)
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(gzip.compress(head + arr.tobytes()))


def test_data_dir_in_config_and_missing_files(capsys, tmp_path, monkeypatch):
    """--data-dir is the Config's own option (no environment variable): tiny IDX files load;
    a directory without the MNIST files is one line and exit code 2."""
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 40), ("t10k", 20)):
        _write_idx(data / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(data / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    c = dataclasses.replace(
        exact_gn.PRESETS["evidence"], data_dir=str(data), n_train=32, n_test=16,
        full_batch=32, batch=16, rank_batch=16, probe=8,
    )  # fmt: skip
    exact_gn.validate(c)
    d = exact_gn.load_data(c)
    assert d.x_train.shape == (32, 784) and d.x_test.shape == (16, 784)
    import os

    assert "LAZYRICH_DATA" not in os.environ
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    err = _error(capsys, out, ["--preset", "evidence", "--data-dir", str(empty)])
    assert "MNIST file train-images-idx3-ubyte not found" in err
    err = _error(capsys, out, ["--preset", "evidence", "--data-dir", str(tmp_path / "nope")])
    assert "does not exist" in err


def test_odd_input_dimension_from_the_api():
    with pytest.raises(ConfigError, match="even input dimension"):
        RevMLP(39, num_blocks=2, hidden=8, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="is odd"):
        exact_gn.validate(dataclasses.replace(exact_gn.PRESETS["quick"], features=21))
