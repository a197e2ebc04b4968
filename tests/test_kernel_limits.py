"""The kernel-limits study: a tiny end-to-end run (results, figure, claim rows measured on the
seeds), the per-seed measures against a hand computation, and its one-line errors."""

import dataclasses
import json
import math
from typing import Any

import numpy as np
import pytest
import xarray as xr

from analysis import kernel_limits
from analysis.cli import main
from analysis.kernel_limits.claims import PART, measures
from lazyrich import evidence

TINY = [
    "--datasets", "teacher", "--widths", "16", "8", "--gammas", "0.1", "1",
    "--n-train", "8", "--n-test", "8", "--teacher-dim", "4", "--steps", "6", "--records", "3",
    "--samples", "64", "--batches", "2", "--seeds", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "kernel-limits", *TINY, "--out", str(out)]) == 0
    return out / "kernel-limits"


def _config(folder) -> kernel_limits.Config:
    cfg = json.loads((folder / "config.json").read_text())
    names = {f.name for f in dataclasses.fields(kernel_limits.Config)}
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    return kernel_limits.Config(**{k: v for k, v in fields.items() if k in names})


def test_end_to_end(tiny_run):
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    assert ds.train_loss.dims == ("dataset", "seed", "gamma", "width", "step")
    assert ds.train_loss.shape == (1, 2, 2, 2, ds.step.size)
    assert list(ds.seed.values) == [0, 1] and ds.step.values[-1] == 6
    # centred networks and both theories start at ½ mean y² of their seed's data
    for name in ("dmft_train", "ntk_train"):
        np.testing.assert_allclose(ds[name].values[..., 0], ds.train_loss.values[..., 0, 0])
    np.testing.assert_allclose(ds.dmft_test.values[..., 0], ds.ntk_test.values[..., 0])
    assert not ds.diverged.values.any()
    assert np.all((ds.alignment.values > 0) & (ds.alignment.values <= 1))
    assert (tiny_run / "figures" / "loss_curves.png").stat().st_size > 1000
    s = json.loads((tiny_run / "summary.json").read_text())
    assert s["study"] == "kernel-limits" and s["preset"] == "quick"
    assert set(s["network_to_dmft"]["teacher"]) == {"16", "8"}


def test_claim_rows_are_the_declared_claims_measured_on_the_seeds(tiny_run):
    s = json.loads((tiny_run / "summary.json").read_text())
    c = _config(tiny_run)
    declared = kernel_limits.declare(c)
    assert [r["id"] for r in s["claims"]] == [d.id for d in declared]
    assert len(declared) == 5 and len({d.id for d in declared}) == 5
    units = evidence.read_units(tiny_run / evidence.UNITS_FILE)
    for claim, row in zip(declared, s["claims"], strict=True):
        assert len(units[claim.id]) == 2  # one value per seed
        assert row["measured"] == evidence.measure(claim, units[claim.id]).as_dict()
        assert row["margin"] == claim.margin and row["verdict"] == "smoke"
    # the per-seed values are what `measures` computes from the stored curves
    ds = xr.open_dataset(tiny_run / "results.nc", engine="scipy").load()
    for k in range(2):
        r = {
            name: ds[var].values[0, k]
            for name, var in [
                ("train_loss", "train_loss"), ("test_loss", "test_loss"),
                ("alignment", "alignment"), ("dmft_train", "dmft_train"),
                ("dmft_test", "dmft_test"), ("ntk_train", "ntk_train"), ("ntk_test", "ntk_test"),
            ]
        }  # fmt: skip
        got = measures(c, r)
        for cid, v in got.items():
            stored = units[f"teacher {cid}"][k]
            assert (math.isnan(v) and math.isnan(stored)) or v == pytest.approx(stored, rel=1e-12)


def test_measures_by_hand():
    """Two widths 100 and 400 whose distance to the DMFT falls 2× (slope −1/2); the DMFT parts
    from the NTK at the second γ only; alignment rises by 0.1."""
    c = kernel_limits.Config(widths=(400, 100), gammas=(0.1, 1.0), gamma_width=1.0)
    t = np.linspace(1.0, 0.5, 4)
    dmft = np.stack([t, t])
    ntk = np.stack([t, t * (1 + 2 * PART)])
    net = np.stack([dmft + 0.01, dmft + 0.02], axis=1)  # (gamma, width=[400, 100], step)
    r = {
        "train_loss": net, "test_loss": net, "dmft_train": dmft, "dmft_test": dmft,
        "ntk_train": ntk, "ntk_test": ntk, "alignment": np.array([[0.3, 0.2], [0.4, 0.1]]),
    }  # fmt: skip
    m = measures(c, r)
    assert m["width-exponent"] == pytest.approx(-0.5)
    assert m["width-2x"] == pytest.approx(1.0)
    assert m["parting-gamma"] == pytest.approx(0.0)
    d_ntk = np.mean(np.abs(ntk[1, 1:] - t[1:]))
    assert m["not-ntk"] == pytest.approx(math.log10(d_ntk / 0.01))
    assert m["alignment"] == pytest.approx(0.1)


def test_sizing_names_declared_claims():
    c = kernel_limits.PRESETS["evidence"]
    kernel_limits.validate(c)
    sizes, notes = kernel_limits.sizing(c)
    assert set(sizes) == {d.id for d in kernel_limits.declare(c)} and notes
    assert c.seeds >= 5


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--widths", "8"], "--widths needs at least two"),
        (["--gamma-width", "0.5"], "--gamma-width 0.5 is not one of --gammas"),
        (["--datasets", "cifar"], "unknown dataset"),
        (["--activation", "tanh", "--depth", "4"], "--depth 4"),
    ],
)
def test_bad_option_is_one_line(args, needle, tmp_path, capsys):
    assert main(["run", "kernel-limits", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err
    assert not (tmp_path / "kernel-limits").exists()
