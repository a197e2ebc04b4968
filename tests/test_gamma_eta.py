"""The γ–η study: η protocol, read-outs, dynamics detectors, sharpness replay, toy, CLI errors."""

import dataclasses
import importlib
import json
import logging
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree

from analysis.cli import main
from analysis.gamma_eta import Config, case_label, cases_of, collapse, declare
from analysis.gamma_eta import dynamics as dyn
from analysis.gamma_eta import per_seed as ps
from analysis.gamma_eta import protocol as proto
from analysis.gamma_eta.analyse import rich_indices
from analysis.gamma_eta.claims import judge_case, lazy_margin, rich_margin
from analysis.gamma_eta.fits import broken_fit
from analysis.gamma_eta.setup import OnlineSetup, OnlineTask, make_setup, sweep
from analysis.gamma_eta.sharpness import sharpness_along
from analysis.gamma_eta.toy import toy_summary
from lazyrich import evidence
from lazyrich.errors import ConfigError
from lazyrich.models import CNN, MLP, partition, scaled
from lazyrich.train import Grid, Stream, get_loss

# ------------------------------------------------------------------ protocol


def test_first_stable_applies_the_rule_across_seeds():
    # η decreasing along axis 1; one γ per row, two seeds
    d = np.zeros((4, 5, 2), bool)
    d[0, :2, 0] = True  # diverges at the two largest η (seed 0 only)
    d[1, 2, 1] = True  # an isolated divergence marks every larger η diverged too
    d[2] = True  # nothing stable
    # row 3: nothing diverged → censored
    first, censored = proto.first_stable(d)
    np.testing.assert_array_equal(first, [2, 3, 5, 0])
    np.testing.assert_array_equal(censored, [False, False, False, True])


def test_window_is_a_lattice_slice_below_the_first_stable_eta():
    k = proto.window_offsets(np.array([2, 0]), proto.window_size(3.0, 2.0))
    assert k.shape == (2, 7)
    etas = proto.lattice(100.0, 2.0, k)
    np.testing.assert_allclose(etas[0], 10.0 ** (2 - (np.arange(7)[::-1] + 2) / 2))
    assert np.all(np.diff(etas, axis=1) > 0)  # ascending η, as the divergence rule expects
    assert etas[1, -1] == 100.0 and np.isclose(etas[1, 0], 0.1)


def test_eta_star_and_eta_max_by_brute_force():
    rng = np.random.default_rng(0)
    loss = rng.uniform(0.1, 1.0, (3, 6, 2))
    div = rng.uniform(size=(3, 6, 2)) < 0.25
    etas = np.sort(rng.uniform(1e-3, 1, (3, 6)), axis=1)
    marked = proto.divergence_rule(div)
    best, largest, best_loss = proto.eta_star(loss, marked, etas)
    for i in range(3):
        ok = [j for j in range(6) if not marked[i, j].any()]
        # the rule: once a cell diverges, every larger η is marked
        first_bad = next((j for j in range(6) if div[i, j].any()), 6)
        assert ok == list(range(first_bad))
        if not ok:
            assert np.isnan(best[i]) and np.isnan(largest[i])
            continue
        j = min(ok, key=lambda j: loss[i, j].mean())
        assert best[i] == etas[i, j] and largest[i] == etas[i, ok[-1]]
        assert np.isclose(best_loss[i], loss[i, j].mean())


def test_final_loss_is_the_mean_over_the_last_tenth():
    steps = np.array([1, 10, 50, 90, 95, 100])
    curve = np.array([9.0, 8, 7, 1, 2, 3])
    assert proto.final_loss(curve, steps) == 2.0


def test_rich_indices_pick_nearby_grid_points_above_one():
    g = np.logspace(-2, 3, 6)
    assert rich_indices(g, (10.0, 100.0, 1000.0, 1e5), 1.0) == [3, 4, 5]
    assert rich_indices(g, (0.5, 40.0), 1.0) == [4]  # 0.5 is not rich; 40 → 100


# ------------------------------------------------------------------ dynamics


def test_drops_and_plateau_of_a_two_step_staircase():
    t = np.unique(np.round(np.geomspace(1, 1e4, 200)))
    step = lambda t0, w: 1 / (1 + np.exp(-(np.log(t) - np.log(t0)) / w))
    loss = 1.0 - 0.7 * step(100, 0.05) - 0.25 * step(2000, 0.05)
    drops = dyn.detect_drops(t, loss, 1.0)
    assert len(drops) == 2
    assert 60 < drops[0]["start"] < 100 < drops[0]["end"] < 170
    assert 1200 < drops[1]["start"] < 2000 < drops[1]["end"] < 3400
    assert drops[0]["loss_after"] < 0.35 and drops[1]["loss_after"] < 0.07
    plateau = dyn.plateau_length(t, loss, 1.0)
    assert plateau is not None and 80 < plateau <= 100
    assert dyn.plateau_length(t, np.ones_like(t), 1.0) is None
    assert dyn.staircase_steps(t, loss, 1.0) == 2
    # one drop broken by a noisy record (a shallow stretch shorter than a doubling) is one step
    noisy = np.where((t > 98) & (t < 104), np.interp(98, t, loss), loss)
    assert len(dyn.detect_drops(t, noisy, 1.0)) == 3 and dyn.staircase_steps(t, noisy, 1.0) == 2


def test_collapse_score_zero_for_curves_of_tau_only():
    steps = np.geomspace(1, 1e4, 80)
    law = lambda tau: 1 / (1 + tau**2)
    L, eta = 3, 0.5
    gammas = [10.0, 100.0, 1000.0]
    taus = [dyn.rescale(steps, eta, g, L) for g in gammas]
    curves = [law(tau) for tau in taus]
    score, grid = dyn.collapse_score(taus, curves)
    raw, _ = dyn.collapse_score([steps] * 3, curves)
    assert score is not None and score < 1e-3 and grid is not None
    assert raw is not None and raw > 1.0
    assert dyn.collapse_score([steps], [curves[0]]) == (None, None)


# ------------------------------------------------------------------ sharpness replay

D, N = 3, 6


def _sample(key, n):
    x = jax.random.normal(key, (n, D), dtype=jnp.result_type(float))
    return x, jnp.sin(x @ jnp.arange(1.0, D + 1))[:, None]


def _setup():
    tx, ty = _sample(jax.random.key(5), 32)
    return OnlineSetup(
        make_model=lambda k, g: scaled(MLP(D, N, 2, 1, key=k), gamma=g),
        sample=_sample,
        test_x=tx,
        test_y=ty,
        batch=8,
        lr_multiplier=float(N),
    )


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_sharpness_replay_is_the_sweep_compiled_once_and_a_dense_hessian_at_init():
    """With momentum (the setup's `direction`) the replay is the sweep's trajectory (same init,
    stream and step, float64 both), for every seed; seeds and fixed batches are inputs, so the
    second seed's call compiles nothing; at init the measure is the top eigenvalue of the dense
    Hessian of the fixed-batch loss; a γ without a finite η* is NaN."""
    setup = dataclasses.replace(_setup(), direction=optax.trace(0.9))
    gammas, etas = np.array([0.1, 3.0]), np.array([2e-3, 0.05])
    res = sweep(setup, Grid.of(gammas, etas[:, None], [0, 1]), [7, 30], x64=True, progress=False)
    compiled = []
    for seed in (0, 1):
        fx, fy = _sample(jax.random.key(9 + seed), 16)  # another batch per call: still no compile
        log = _Messages()
        logging.getLogger("jax").addHandler(log)
        try:
            with jax.log_compiles(True):
                lam, test = sharpness_along(
                    setup, gammas, etas, np.array([0, 7, 30]), fixed_x=fx, fixed_y=fy, seed=seed
                )
        finally:
            logging.getLogger("jax").removeHandler(log)
        compiled.append(sum("Compiling" in m for m in log.messages))
        np.testing.assert_allclose(test[:, 1:], res["test_loss"][:, 0, seed], rtol=1e-9)
        assert np.all(np.isfinite(lam))
    assert compiled[0] > 0 and compiled[1] == 0, compiled
    with jax.enable_x64(True):  # seed 1's init, its fixed batch
        for g, value in zip(gammas, lam[:, 0], strict=True):
            model = setup.make_model(jax.random.fold_in(jax.random.key(1), 0), jnp.float64(g))
            params, rest = partition(model)
            flat, unravel = ravel_pytree(params)
            x64 = jnp.asarray(fx, jnp.float64)

            def loss(v, unravel=unravel, rest=rest, x64=x64):
                return get_loss("mse")(eqx.combine(unravel(v), rest)(x64), fy)

            top = jnp.linalg.eigvalsh(jax.hessian(loss)(flat))[-1]
            np.testing.assert_allclose(value, top, rtol=1e-6)
    lam, _ = sharpness_along(
        setup, gammas, np.array([np.nan, 0.05]), np.array([0, 7]), fixed_x=fx, fixed_y=fy
    )
    assert np.isnan(lam[0]).all() and np.isfinite(lam[1]).all()


# ------------------------------------------------------------------ the CNN case


def test_cnn_case_sweep_equals_a_plain_sgd_loop_of_the_centred_cnn():
    # an image-shaped stream: 12-long one-channel signals, 3 classes (one-hot MSE targets)
    def sample(key, n):
        kx, ky = jax.random.split(key)
        x = jax.random.normal(kx, (n, 12), jnp.float32)
        return x, jax.nn.one_hot(jax.random.randint(ky, (n,), 0, 3), 3)

    tx, ty = jax.jit(sample, static_argnums=1)(jax.random.key(3), 8)
    stream = OnlineTask("signals", Stream(sample, tx, ty), 3, (12, 1))
    cnn_setup = lambda stream: make_setup(
        stream, arch="cnn", width=2, depth=4, activation="relu", batch=4, loss="mse", threshold=1e6
    )
    setup = cnn_setup(stream)
    gammas, eta, steps = [0.5, 20.0], 0.3, 6
    res = sweep(setup, Grid.of(gammas, [eta], [0]), [steps], x64=False, progress=False)

    # by hand: the μP CNN (N = 2 channels, so the step is η·2), centred and scaled by 1/γ,
    # plain SGD on the engine's stream (init from fold_in(key, 0), batch t from
    # fold_in(fold_in(key, 1), t)); one compiled program (eager ops compile one by one)
    key = jax.random.key(0)
    paper_bias = {"use_bias": True, "bias_style": "paper"}  # the study's default biases
    net = lambda: CNN((12, 1), 2, 3, key=jax.random.fold_in(key, 0), **paper_bias)
    assert eqx.filter_eval_shape(net).lr_multiplier == setup.lr_multiplier == 2.0

    @jax.jit
    def by_hand(g):
        params, rest = partition(scaled(net(), gamma=g, centre=True))
        loss = lambda p, x, y: get_loss("mse")(eqx.combine(p, rest)(x), y)
        at_init = eqx.combine(params, rest)(tx)

        def step(t, p):
            x, y = sample(jax.random.fold_in(jax.random.fold_in(key, 1), t), 4)
            return jax.tree.map(lambda a, d: a - eta * 2.0 * d, p, jax.grad(loss)(p, x, y))

        return loss(jax.lax.fori_loop(0, steps, step, params), tx, ty), at_init

    for i, g in enumerate(gammas):
        final, at_init = by_hand(jnp.float32(g))
        np.testing.assert_array_equal(at_init, 0.0)  # centred: exactly 0 at init
        np.testing.assert_allclose(res["test_loss"][i, 0, 0, -1], final, rtol=1e-4)
    assert not res["diverged"].any()
    with pytest.raises(ConfigError, match="--arch cnn needs an image-shaped task"):
        cnn_setup(OnlineTask("flat", Stream(sample, tx, ty), 3))


def test_cases_give_the_cnn_one_case_at_its_own_depth_on_image_tasks_only():
    c = Config(task=("teacher", "mnist1d"), loss=("mse", "xent"), arch=("mlp", "cnn"), depth=(2, 4))
    labels = [case_label(*case) for case in cases_of(c)]
    assert labels == [
        "teacher mse L=2", "teacher mse L=4",
        "mnist1d mse L=2", "mnist1d mse L=4", "mnist1d mse CNN L=4",
        "mnist1d ce L=2", "mnist1d ce L=4", "mnist1d ce CNN L=4",
    ]  # fmt: skip
    # xent is read as ce; other tasks can run at their own depths
    c2 = Config(
        task=("teacher", "mnist1d"), loss=("xent", "ce"), depth=(2, 3), other_task_depth=(3,)
    )
    assert [case_label(*k) for k in cases_of(c2)] == ["mnist1d ce L=3"]  # no mse: no teacher


# ------------------------------------------------------------------ fits and toy theory


@pytest.mark.parametrize("method", ["nuts", "least-squares"])
def test_too_few_points_is_text_not_a_fit(method):
    out, fit = broken_fit([0.1, 1.0, 10.0], [1e-3, np.nan, 1e-1], method=method, samples=20)
    assert fit is None and "too few points to fit a slope" in out["not_measured"]


def test_toy_theory_slopes_and_plateau_against_simulation():
    summary, _ = toy_summary(3)
    lazy, rich = summary["theory"]
    assert abs(summary["eta_max_slope_small_gamma_simulated"] - lazy) < 0.05
    assert abs(summary["eta_max_slope_large_gamma_simulated"] - rich) < 0.05
    assert summary["plateau_max_relative_error"] < 0.1


# ------------------------------------------------------------------ command line

TINY = [
    "--dim", "4", "--width", "8", "--depth", "2", "--batch", "4", "--steps", "10",
    "--gamma-min", "0.1", "--gamma-max", "10", "--eta-min", "0.01", "--eta-max", "1",
    "--seeds", "1", "--records", "4", "--n-test", "16", "--probe-steps", "5",
    "--sharpness-batch", "8", "--sharpness-iters", "4", "--sharpness-points", "1",
]  # fmt: skip


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--gamma-min", "10", "--gamma-max", "1"], "the gamma grid is empty"),
        (["--eta-min", "1", "--eta-max", "0.1"], "the eta grid is empty"),
        (["--depth", "1"], "a single weight layer has no rich regime"),
        (["--depth", "3", "1"], "a single weight layer has no rich regime"),
        (["--loss", "xent"], "--loss ce needs a classification task"),
        (["--loss", "ce"], "--loss ce needs a classification task"),
        (
            ["--preset", "evidence", "--gamma-min", "1", "--gamma-max", "1000"],
            "point(s) below γ = 1, and the evidence needs 3 on each side",
        ),
        (
            ["--preset", "evidence", "--gamma-min", "1e-3", "--gamma-max", "1"],
            "pass --gamma-max 1e3 or higher",
        ),
        (["--window-decades", "-1"], "--window-decades must be >= 0"),
        (["--rich-gammas", "0.5"], "--rich-gammas must be finite and > 1"),
        (["--arch", "cnn"], "--arch cnn needs an image-shaped task"),
        (["--task", "teacher", "mnist1d", "--arch", "cnn"], "--task teacher has no case"),
        (["--arch", "cnn", "--task", "mnist1d", "--cnn-width", "-1"], "--cnn-width must be >= 0"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, tmp_path, argv, text):
    code = main(["run", "gamma-eta", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and text in err, err
    assert not (tmp_path / "gamma-eta").exists()


def test_tiny_mnist1d_cross_entropy_run_reports_unfittable_slopes_as_text(tmp_path):
    argv = ["run", "gamma-eta", *TINY, "--task", "mnist1d", "--loss", "xent"]
    assert main([*argv, "--mnist1d-pool", "60", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "gamma-eta" / "summary.json").read_text())
    case = summary["cases"]["mnist1d ce L=2"]
    for key in ("eta_star_slope_small_gamma", "eta_max_slope_large_gamma", "gamma_crossover"):
        assert "too few points to fit a slope" in case[key]
    assert set(case["eta_star"]) == {"0.1", "1", "10"}
    assert case["theory"]["eta_slope_large_gamma"] == 1.0
    assert "collapse_score" in case and "collapse_score_unrescaled" in case
    assert summary["toy_theory"]["L=2"]["theory"] == [2.0, 1.0]
    for fig in ("loss_heatmap", "loss_curves", "eta_star_fit", "sharpness", "ultra_rich"):
        assert (tmp_path / "gamma-eta" / "figures" / f"{fig}.png").stat().st_size > 1000


def test_short_window_below_the_probe_range_runs(tmp_path):
    """A colleague's crash: with a 1-decade window the lattice ended above the probe's smallest
    η and `lat_div[:, probe_k] = probe_marked` raised an IndexError."""
    argv = [*TINY, "--eta-min", "1e-3", "--eta-max", "10", "--eta-per-decade", "1"]
    argv += ["--window-decades", "1", "--gamma-min", "1", "--gamma-max", "1000", "--seeds", "2"]
    argv += ["--budget-factor", "2"]  # the step-budget control: its row beside claim 2
    assert main(["run", "gamma-eta", *argv, "--out", str(tmp_path)]) == 0
    folder = tmp_path / "gamma-eta"
    summary = json.loads((folder / "summary.json").read_text())
    # the rows are the declared claims, each measured on its per-seed values (units.nc)
    cfg = json.loads((folder / "config.json").read_text())
    names = {f.name for f in dataclasses.fields(Config)}
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    c = Config(**{k: v for k, v in fields.items() if k in names})
    declared = declare(c)
    assert [r["id"] for r in summary["claims"]] == [d.id for d in declared]
    suffixes = [d.id.split()[-1] for d in declared]
    assert suffixes == ["1", "2", "2-budget", "2b", "3a", "3b", "4", "4b", "5", "6"]
    units = evidence.read_units(folder / evidence.UNITS_FILE)
    for claim, row in zip(declared, summary["claims"], strict=True):
        assert len(units[claim.id]) == 2  # one value per seed
        assert row["measured"] == evidence.measure(claim, units[claim.id]).as_dict()
        assert row["verdict"] == "smoke" and row["margin"] == claim.margin
    best = summary["cases"]["teacher mse L=2"]["best_gamma_per_seed"]
    np.testing.assert_allclose(units["teacher mse L=2 6"], np.log10(best))
    ds = xr.open_dataset(folder / "results.nc", engine="scipy").load()
    assert ds.eta_star_per_seed.shape == (1, 4, 2)
    assert ds.sharpness_per_seed.shape == (1, 4, 2, 2)
    # the sharpness was replayed for every seed at its own η*
    star = ds.eta_star_per_seed.values[0]
    np.testing.assert_array_equal(
        np.isfinite(ds.sharpness_per_seed.values[0, :, :, -1]), np.isfinite(star)
    )
    case = summary["cases"]["teacher mse L=2"]
    assert isinstance(case["plateau_flagged_left_out_of_fits"], int)
    assert "collapse" in case  # rich γ 10, 100, 1000 on the grid: the collapse runs ran
    assert set(case["collapse"]["gap_decades"]) == {"2/L", "1", "0"}
    assert (tmp_path / "gamma-eta" / "figures" / "collapse.png").stat().st_size > 1000


def test_collapse_gap_is_zero_for_time_shifted_copies_and_positive_for_stretched_ones():
    steps = np.arange(1, 2001, 4)  # fine records: a coarse log grid blurs a sharp drop
    drop = lambda t, t0, k: 1.0 / (1.0 + np.exp(np.clip((t - t0) / k, -50, 50)))
    loss = lambda t0, k: 0.05 + drop(steps, t0, k)  # starts near 1.05, drops to 0.05
    loss0 = float(loss(300, 20)[0])
    same = np.stack([loss(300, 20), loss(700, 20)])  # same shape, shifted plateau
    stretched = np.stack([loss(300, 20), loss(700, 80)])
    assert collapse.aligned_gap(steps, same, loss0) < 0.05
    assert collapse.aligned_gap(steps, stretched, loss0) > 0.3
    assert np.isnan(
        collapse.aligned_gap(steps, np.stack([same[0], np.full(steps.size, 2.0)]), loss0)
    )


def test_toy_plateau_slope_grows_with_depth():
    # over γ = 10…1000 (not yet asymptotic) the toy's escape step at η ∝ γ^(2/L) grows with γ,
    # faster for deeper models (0.49, 0.71, 0.83 for L = 2, 3, 4 at the 0.9×loss0 level)
    g = np.array([10.0, 100.0, 1000.0])
    s2, s3, s4 = (collapse.toy_plateau_slope(g, L) for L in (2, 3, 4))
    assert 0 < s2 < s3 < s4 < 1


def test_toy_matching_a0_recovers_the_initial_weight():
    # the slope at a0 = 0.3 leads back to a0 = 0.3; slopes the toy cannot give have no a0
    g = np.array([10.0, 100.0, 1000.0])
    for L in (2, 3, 4):
        slope = collapse.toy_plateau_slope(g, L, a0=0.3)
        assert slope < collapse.toy_plateau_slope(g, L)  # smaller a0: nearer the asymptote
        assert collapse.toy_matching_a0(g, L, slope) == pytest.approx(0.3, rel=1e-4)
    assert collapse.toy_matching_a0(g, 3, 0.9) is None  # above the toy's slope at a0 = 1
    assert collapse.toy_matching_a0(g, 3, 0.2) is None  # below the asymptote 1/3


def test_declared_margins_and_resolutions_come_from_the_theory_and_the_grids():
    c = Config(depth=(2, 3, 4), gamma_per_decade=2.0, eta_per_decade=4.0)  # γ: 1e-3 … 1e3
    by_id = {d.id: d for d in declare(c)}
    L3 = {k.split()[-1]: v for k, v in by_id.items() if k.startswith("teacher mse L=3 ")}
    assert L3["2"].theory == pytest.approx(2 / 3) and L3["3b"].theory == pytest.approx(-2 / 3)
    assert L3["2"].margin == pytest.approx((2 / 3 - 1 / 2) / 2)  # the L = 4 prediction
    assert by_id["teacher mse L=2 2"].margin == pytest.approx((1 - 2 / 3) / 2)
    assert by_id["teacher mse L=4 2b"].margin == pytest.approx((1 / 2 - 2 / 5) / 2)
    assert L3["1"].margin == L3["3a"].margin == pytest.approx((2 - 2 / 3) / 2)
    # η on a 1/4-decade lattice, each side of γ = 1 spans 3 decades
    assert L3["1"].resolution == L3["2"].resolution == pytest.approx(0.25 / 3)
    assert L3["3a"].resolution is None  # the sharpness is not a grid value
    assert (L3["5"].kind, L3["5"].theory) == ("below", 1.0)
    assert (L3["6"].kind, L3["6"].theory, L3["6"].resolution) == ("above", 0.0, 0.5)
    toy = collapse.toy_plateau_slope(np.array([10.0, 100.0, 1000.0]), 3)
    assert L3["4"].theory == pytest.approx(toy, abs=1e-4)
    assert "toy comparison, not the paper's prediction" in L3["4"].claim
    assert (L3["4b"].kind, L3["4b"].theory, L3["4b"].margin) == ("above", 1.0, 0.0)
    assert "2-budget" not in L3  # no budget control unless --budget-factor
    assert rich_margin(3)[0] == pytest.approx(1 / 12) and lazy_margin(2)[0] == 0.5
    # no collapse runs, no claims 4 and 5; the declaration reads the config alone
    ids = [d.id for d in declare(Config(depth=(2,), collapse=False, budget_factor=2.0))]
    assert [i.split()[-1] for i in ids] == ["1", "2", "2-budget", "2b", "3a", "3b", "4b", "6"]
    budget = {d.id: d for d in declare(Config(depth=(3,), budget_factor=2.0))}
    assert budget["teacher mse L=3 2-budget"].theory == 0.0
    assert budget["teacher mse L=3 2-budget"].margin == pytest.approx(1 / 12)


def test_judge_case_measures_per_seed_values():
    c = Config(depth=(3,), gamma_per_decade=2.0, collapse=False, budget_factor=1.5)
    claims = declare(c)
    label = "teacher mse L=3"
    s = {
        "depth": 3,
        "per_seed": {
            "slopes": {
                "eta_star": {"small": [2.0, 2.1, 1.9], "large": [0.3, 0.32, 0.28]},
                "eta_max": {"small": [2.0, 2.0, 2.0], "large": [0.6, 0.7, math.nan]},
                "sharpness": {"small": [-2.0, -1.9, -2.1], "large": [-0.66, -0.68, -0.64]},
            },
            "plateau_flagged_gammas": [[], [1000.0], []],
        },
        "best_gamma_per_seed": [100.0, 1000.0, 100.0],
        "budget_control": {
            "main": [0.7, 0.66, 0.6], "control": [0.68, 0.67, 0.62], "change": [-0.02, 0.01, 0.02],
            "steps": 4500,
        },
        "staircase": {"gamma": 1e3, "eta_per_seed": [1.0, 2.0, 1.0], "steps_per_seed": [1.0] * 3},
    }  # fmt: skip
    rows = judge_case(claims, label, s, None)
    assert list(rows) == [d.id for d in claims]
    verdicts = {k.split()[-1]: r["verdict"] for k, r in rows.items()}
    assert verdicts == {
        "1": "agrees", "2": "disagrees", "2-budget": "agrees", "2b": "undecided", "3a": "agrees",
        "3b": "agrees", "4b": "disagrees", "6": "agrees",
    }  # fmt: skip
    assert rows[f"{label} 2-budget"]["samples"] == [-0.02, 0.01, 0.02]
    assert "at 4500 steps: 0.68, 0.67, 0.62" in rows[f"{label} 2-budget"]["note"]
    r = rows[f"{label} 2b"]
    assert r["measured"]["n"] == 2 and r["samples"][:2] == [0.6, 0.7]  # a seed without a fit
    assert "seed 1: 1" in rows[f"{label} 1"]["note"]  # the flagged γ are named per seed
    assert rows[f"{label} 6"]["samples"] == pytest.approx([2.0, 3.0, 2.0])
    for claim in claims:
        row = rows[claim.id]
        assert row["measured"] == evidence.measure(claim, row["samples"]).as_dict()


def test_budget_control_slopes_by_least_squares():
    gammas = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
    etas = np.tile(10.0 ** np.arange(-3.0, 1.0), (5, 1))  # (γ, η ascending)
    steps = np.array([10, 50, 90, 100])
    # control: seed 0's lowest loss at η index 1 for γ ≤ 10, index 2 above; seed 1 always 3
    loss = np.ones((5, 4, 2, 4))
    loss[:3, 1, 0], loss[3:, 2, 0], loss[:, 3, 1] = 0.1, 0.1, 0.1
    control = {"test_loss": loss, "diverged": np.zeros((5, 4, 2), bool)}
    main = np.array([[1e-3, 1.0]] * 5)
    main[0, 0] = np.nan  # left out (plateau-flagged)
    out = ps.budget_change(gammas, etas, main, control, steps, loss0=1.0)
    star = np.where(np.arange(5)[:, None] < 3, 1e-2, 1e-1)
    x = np.log10(gammas[2:])  # γ > 1
    expect = np.polyfit(x, np.log10(star[2:, 0]), 1)[0]
    np.testing.assert_allclose(out["control"], [expect, 0.0], atol=1e-12)
    np.testing.assert_allclose(out["main"], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out["change"], [expect, 0.0], atol=1e-12)
    assert math.isnan(ps.rich_line_slopes(gammas[:4], main[:4])[0])  # 2 points above γ = 1


def test_sizing_names_declared_claims_and_the_preset_fits_the_budget():
    from analysis.gamma_eta import PRESETS, sizing

    for name in ("quick", "evidence"):
        lines, notes = sizing(PRESETS[name])
        assert set(lines) <= {d.id for d in declare(PRESETS[name])} and lines
        assert notes and "min" in notes
    ev = PRESETS["evidence"]
    assert ev.seeds >= 5 and ev.budget_factor > 1
    ids = [d.id for d in declare(ev)]
    assert ids.index("teacher mse L=2 2-budget") == ids.index("teacher mse L=2 2") + 1


def test_per_seed_eta_star_and_eta_max_by_brute_force():
    rng = np.random.default_rng(1)
    loss = rng.uniform(0.1, 1.0, (4, 5, 3))
    div = rng.uniform(size=(4, 5, 3)) < 0.2
    etas = np.sort(rng.uniform(1e-3, 1, (4, 5)), axis=1)
    marked = proto.divergence_rule(div)
    best, top, index = ps.eta_star_per_seed(loss, marked, etas)
    for i in range(4):
        for k in range(3):
            ok = [j for j in range(5) if not marked[i, j, k]]
            if not ok:
                assert np.isnan(best[i, k]) and np.isnan(top[i, k])
                continue
            j = min(ok, key=lambda j: loss[i, j, k])
            assert best[i, k] == etas[i, j] and index[i, k] == j and top[i, k] == etas[i, ok[-1]]
    # the γ of each seed's lowest loss over the cells it survived
    g = np.array([0.1, 1.0, 10.0, 100.0])
    for k, gk in enumerate(ps.best_gamma_per_seed(g, loss, marked)):
        cells = [(loss[i, j, k], g[i]) for i in range(4) for j in range(5) if not marked[i, j, k]]
        assert gk == min(cells)[1]


def test_per_seed_plateau_flag_reads_the_seed_curve_at_its_own_eta_star():
    curves = np.ones((2, 3, 2, 4))  # (γ, η, seed, step), loss0 = 1
    curves[0, 1, 0, -1] = 0.5  # seed 0 at η index 1 leaves the plateau at γ 0
    curves[0, 2, 1, -1] = 0.5  # seed 1 leaves it only at η index 2, not at its η* (index 0)
    index = np.array([[1, 0], [0, 0]])
    best = np.array([[1.0, 1.0], [np.nan, 1.0]])
    flags = ps.plateau_per_seed(curves, index, best, 1.0)
    np.testing.assert_array_equal(flags, [[False, True], [False, True]])


def test_per_seed_slopes_recover_a_broken_power_law():
    g = np.logspace(-3, 3, 13)
    u = np.log10(g)  # slope 2 below γ = 1, b2 above, the fit's own smooth break (width 0.2)
    law = lambda b2: 10 ** (-2 + 2 * u + (b2 - 2) * 0.2 * np.logaddexp(0, u / 0.2))
    values = np.stack([law(2 / 3), law(1 / 2), np.full(13, np.nan)], axis=1)
    out = ps.slopes_per_seed(g, values)
    assert out["small"][:2] == pytest.approx([2.0, 2.0], abs=0.02)
    assert out["large"][:2] == pytest.approx([2 / 3, 1 / 2], abs=0.02)
    assert np.isnan(out["small"][2]) and np.isnan(out["large"][2])  # no points: no fit


def test_edge_ratios_note():
    from analysis.gamma_eta.claims import edge_ratios

    flat = {"eta_star": {"0.1": 0.01, "1": 0.1, "10": 1.0}, "eta_max": {"0.1": 1, "1": 1, "10": 10}}
    assert edge_ratios(flat) == "η*/η_max by γ ≥ 1: 1: 0.1, 10: 0.1"
    rising = {
        "eta_star": {"1": 0.1, "10": 0.1, "100": 5.0},
        "eta_max": {"1": 1, "10": 1, "100": 10},
    }
    text = edge_ratios(rising)
    assert text is not None and "rises from 0.1 to 0.5" in text
    assert edge_ratios({"eta_star": {"0.1": 1.0}, "eta_max": {"0.1": 2.0}}) is None


def test_collapse_note_names_the_gamma_that_never_leaves_its_plateau():
    from analysis.gamma_eta.claims import _unaligned

    text = _unaligned({"gammas": [10.0, 1000.0], "align_step": [[1.0, 2.0], [None, 3.0]]})
    assert "γ = 1000 in 1 of 2 seeds" in text and "γ = 10 " not in text
    assert _unaligned({"gammas": [10.0], "align_step": [[1.0, 2.0]]}) == ""


def test_evidence_ce_cnn_preset_runs_the_two_new_cases_and_sizes_every_claim():
    """The second plan's preset: exactly mnist1d ce at L = 3 (MLP) and the CNN (L = 4); every
    claim sized from a proxy of the first plan's run, with the t-width and run-step arithmetic
    recomputed here by hand; the first plan's `evidence` preset unchanged."""
    from scipy import stats

    from analysis.gamma_eta import PRESETS, sizing

    sz = importlib.import_module("analysis.gamma_eta.sizing")  # the module, not the function
    c = PRESETS["evidence-ce-cnn"]
    assert cases_of(c) == [("mnist1d", "ce", "mlp", 3), ("mnist1d", "ce", "cnn", 4)]
    assert c.seeds >= 5 and c.fit_method == "nuts"
    assert sz.proxy_of("mnist1d", "ce", "mlp", 3) == "mnist1d mse L=3"
    assert sz.proxy_of("mnist1d", "ce", "cnn", 4) == "teacher mse L=4"
    lines, notes = sizing(c)
    assert notes is not None and set(lines) == {d.id for d in declare(c)}
    assert all("proxy" in v for v in lines.values())
    # the CNN's rich η* slope: sd 0.0523 of teacher mse L=4, × √(6/3) for 3 γ above 1
    sd = 0.0523 * math.sqrt(6 / 3)
    width = 2 * stats.t.ppf(0.95, c.seeds - 1) * sd / math.sqrt(c.seeds)
    line = lines["mnist1d ce CNN L=4 2"]
    assert f"per-seed sd {sd:.3g}" in line and f"= {width:.3g}" in line
    assert "expected undecided" in line and "2 × margin = 0.1" in line
    assert "decidable" in lines["mnist1d ce CNN L=4 1"]
    # run-steps by hand: probe (7 γ × 45 η × 100) + main (7 γ × 13 η × 5 seeds × 2000) +
    # collapse (3 rich γ × 3 schedules × 5 seeds × 2000), per case
    per_case = 7 * 45 * 100 + 7 * 13 * 5 * 2000 + 3 * 3 * 5 * 2000
    assert sz.run_steps(c) == {"mnist1d ce L=3": per_case, "mnist1d ce CNN L=4": per_case}
    mlp = sz.RATE_DEFAULT * sz.CE_OVER_MSE
    assert c.float64 == "never"  # float32 throughout: no float64 share to cost
    replay = 5 * 7 * 2000  # the sharpness replays: every γ at its η*, per seed
    secs = (per_case + replay) / mlp + (per_case + replay) / sz.CNN_RATE[8]
    assert f"total {secs:.0f} s" in notes
    assert f"about {(secs + sz.OVERHEAD_S) / 60:.0f} min" in notes
    # the first plan's preset, as its plan ran it
    ev = PRESETS["evidence"]
    assert (ev.task, ev.depth, ev.loss, ev.arch) == (
        ("teacher", "mnist1d"),
        (2, 3, 4),
        ("mse",),
        ("mlp",),
    )
    assert (ev.steps, ev.seeds, ev.width, ev.budget_factor, ev.gamma_per_decade) == (
        3000,
        6,
        64,
        1.5,
        2.0,
    )
