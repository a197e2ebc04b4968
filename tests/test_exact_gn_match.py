"""The exact-gn study's interpolated matched-train-loss comparison (`match = "interpolate"`):
the crossing level, the bracket, the log-loss interpolation and the two span controls, checked
against direct computations on made-up loss curves (no training)."""

import dataclasses

import numpy as np
import pytest
import xarray as xr

from analysis import exact_gn
from analysis.exact_gn.summary import bracket, crossing_level
from lazyrich.errors import ConfigError

OPTS = ("gn", "adam", "sgd")
EPOCHS = 6


def _results(seed: int = 0) -> xr.Dataset:
    """A results Dataset with the variables the matched comparison reads: monotone random
    train-loss curves per optimizer (GN fastest), random measures at every epoch."""
    rng = np.random.default_rng(seed)
    n_seed, e = 2, EPOCHS + 1
    rates = {"gn": 0.45, "adam": 0.3, "sgd": 0.12}
    loss = np.empty((1, 3, n_seed, e))
    for i, o in enumerate(OPTS):
        drops = rates[o] * rng.uniform(0.6, 1.4, (n_seed, EPOCHS))
        loss[0, i, :, 0] = 2.5
        loss[0, i, :, 1:] = 2.5 * np.exp(-np.cumsum(drops, 1))
    shape = (1, 3, n_seed, e)
    dims = ("setting", "optimizer", "seed", "epoch")
    mdims = ("setting", "optimizer", "seed", "measure_epoch")
    return xr.Dataset(
        {
            "train_loss": (dims, loss),
            "test_loss": (dims, loss + rng.uniform(0.1, 0.5, shape)),
            "train_accuracy": (dims, rng.uniform(0.5, 1.0, shape)),
            "test_accuracy": (dims, rng.uniform(0.4, 0.9, shape)),
            "ntk_similarity": (mdims, rng.uniform(0.9, 1.0, shape)),
            "kernel_distance": (mdims, rng.uniform(0.0, 0.1, shape)),
            "cka": ((*mdims, "block"), rng.uniform(0.9, 1.0, (*shape, 2))),
            "epochs": (("setting",), np.array([EPOCHS])),
        },
        coords={
            "setting": ["full"],
            "optimizer": list(OPTS),
            "seed": [0, 1],
            "epoch": np.arange(e),
            "measure_epoch": np.arange(e),
            "block": [1, 2],
        },
    )


CONFIG = dataclasses.replace(
    exact_gn.PRESETS["quick"], settings=("full",), seeds=2, match="interpolate"
)


def test_bracket_and_level_by_hand():
    loss = np.array([2.0, 1.0, 0.5, 0.6, 0.25])
    j, w = bracket(loss, 0.7)  # first crossing: 1.0 > 0.7 >= 0.5
    assert j == 2 and w == pytest.approx(np.log(1.0 / 0.7) / np.log(1.0 / 0.5), rel=1e-12)
    assert bracket(loss, 0.5) == (2, pytest.approx(1.0))  # hits the level exactly at epoch 2
    assert "never reaches" in str(bracket(loss, 0.1))
    assert "not finite" in str(bracket(np.array([2.0, np.nan, 0.1]), 0.5))
    levels = {"a": np.array([1.0, 0.4]), "b": np.array([0.9, 0.6, np.nan])}
    assert crossing_level(levels) == 0.6  # the larger of the lowest losses
    assert np.isnan(crossing_level({"a": np.array([np.nan])}))


def test_interpolated_match_against_direct_computation():
    ds = _results()
    matched = exact_gn.matched_train_loss(ds, CONFIG)
    assert "interpolated" in matched["rule"]
    for k in range(2):
        r = ds.sel(setting="full").isel(seed=k)
        curves = {o: r.train_loss.sel(optimizer=o).values for o in OPTS}
        level = max(v[1:].min() for v in curves.values())  # the lowest loss all reach
        got = matched["full"][k]
        assert got["level"] == pytest.approx(level, rel=1e-12)
        for o in OPTS:
            v = curves[o]
            j = next(i for i in range(1, v.size) if v[i] <= level)  # first crossing
            w = np.log(v[j - 1] / level) / np.log(v[j - 1] / v[j])
            m = got[o]
            assert m["bracket"] == [j - 1, j] and m["epoch"] == pytest.approx(j - 1 + w)
            assert m["train_loss"] == pytest.approx(level, rel=1e-9)  # exact in log loss
            ro = r.sel(optimizer=o)
            for key in ("ntk_similarity", "kernel_distance"):
                a, b = float(ro[key][j - 1]), float(ro[key][j])
                assert m[key] == pytest.approx((1 - w) * a + w * b, rel=1e-12)
                if key == "ntk_similarity":
                    assert m["span"][key] == pytest.approx(abs(b - a), rel=1e-12)
            for key in ("test_loss", "train_accuracy", "test_accuracy"):
                a, b = float(ro[key][j - 1]), float(ro[key][j])
                assert m[key] == pytest.approx((1 - w) * a + w * b, rel=1e-12)
            cka = ro.cka.values
            assert m["cka"] == pytest.approx((1 - w) * cka[j - 1] + w * cka[j], rel=1e-12)
            assert m["span"]["cka"] == pytest.approx(
                abs(cka[j].mean() - cka[j - 1].mean()), rel=1e-12
            )
            gap = ro.train_accuracy.values - ro.test_accuracy.values
            assert m["span"]["gap"] == pytest.approx(abs(gap[j] - gap[j - 1]), rel=1e-12)


def _summary(ds: xr.Dataset) -> dict:
    # the parts of summarize's output judge_claims reads for the matched rows (the epoch rows
    # need the whole results file; they are covered by the end-to-end test)
    return {"matched_train_loss": exact_gn.matched_train_loss(ds, CONFIG)}


def test_claims_and_span_controls_from_the_interpolated_values():
    ds = _results(1)
    ids = [c.id for c in exact_gn.declare(CONFIG)]
    assert "matched_train_losses_agree" not in ids
    # each span control sits right before the rows it controls
    assert ids.index("matched_gap_interpolation_span") + 1 == ids.index(
        "gn_generalises_worse_at_matched_loss"
    )
    assert ids.index("matched_similarity_interpolation_span") + 1 == ids.index(
        "gn_lazier_ntk_at_matched_loss"
    )
    summary = _summary(ds)
    rows = {r["id"]: r for r in exact_gn.judge_claims(ds, summary, CONFIG)}
    m = summary["matched_train_loss"]["full"]
    gap = {o: [m[k][o]["train_accuracy"] - m[k][o]["test_accuracy"] for k in range(2)]
           for o in OPTS}  # fmt: skip
    best = [min(("adam", "sgd"), key=lambda o, k=k: gap[o][k]) for k in range(2)]
    np.testing.assert_allclose(
        rows["gn_generalises_worse_at_matched_loss"]["samples"],
        [gap["gn"][k] - gap[best[k]][k] for k in range(2)],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        rows["matched_gap_interpolation_span"]["samples"],
        [m[k]["gn"]["span"]["gap"] + m[k][best[k]]["span"]["gap"] for k in range(2)],
        rtol=1e-12,
    )
    spans = [
        max(m[k]["gn"]["span"][q] + m[k]["adam"]["span"][q] for q in ("ntk_similarity", "cka"))
        for k in range(2)
    ]
    np.testing.assert_allclose(
        rows["matched_similarity_interpolation_span"]["samples"], spans, rtol=1e-12
    )
    np.testing.assert_allclose(
        rows["gn_lazier_cka_at_matched_loss"]["samples"],
        [np.mean(m[k]["gn"]["cka"]) - np.mean(m[k]["adam"]["cka"]) for k in range(2)],
        rtol=1e-12,
    )


def test_an_optimizer_that_never_reaches_the_level_has_no_value():
    ds = _results(2)
    c = dataclasses.replace(CONFIG, match_fraction=1e-6)  # a level nobody reaches
    summary = _summary(ds)
    summary["matched_train_loss"] = exact_gn.matched_train_loss(ds, c)
    for m in summary["matched_train_loss"]["full"]:
        assert all(m[o].startswith("never reaches the level") for o in OPTS)
    rows = {r["id"]: r for r in exact_gn.judge_claims(ds, summary, c)}
    for cid in ("gn_lazier_ntk_at_matched_loss", "matched_similarity_interpolation_span"):
        assert rows[cid]["measured"]["n"] == 0 and rows[cid]["verdict"] == "undecided"


def test_interpolation_needs_every_epoch_measured():
    with pytest.raises(ConfigError, match="--measure-every 1"):
        exact_gn.validate(dataclasses.replace(CONFIG, measure_every=2))
    exact_gn.validate(dataclasses.replace(CONFIG, measure_every=2, match="nearest"))
    with pytest.raises(ConfigError, match="--match 'closest' is unknown"):
        exact_gn.validate(dataclasses.replace(CONFIG, match="closest"))  # type: ignore[arg-type]
