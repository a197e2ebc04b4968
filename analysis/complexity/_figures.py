"""Figures of the complexity study: information and accuracy against the SGD step."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots


def figures(ds: xr.Dataset, store: StudyDir) -> None:
    """info_TASK_NETWORK and accuracy_TASK_NETWORK per run."""
    for i, name in enumerate(ds.run.values):
        r = ds.isel(run=i)
        ok = np.isfinite(r.step.values) & (r.step.values > 0)
        steps = r.step.values[ok]
        slug = str(name).replace("/", "_")
        fig, ax = _plots.figure()
        ax.plot(steps, r.I_FY.values[ok], "C0-", label="I(F_t; Y)")
        ax.plot(steps, r.mu.values[ok], "C1-", label="μ(F_t; L)")
        ax.plot(steps, r.I_LY_given_F.values[ok], "C2:", label="I(L; Y | F_t)")
        ax.axhline(float(r.I_LY), color="k", ls="--", lw=1, label="I(L; Y)")
        if np.isfinite(float(r.T0)):
            ax.axvline(float(r.T0), color="0.5", ls=":", lw=1, label="T0")
        ax.set_xscale("log")
        ax.set(xlabel="SGD step", ylabel="bits", title=f"{name}: information on the test set")
        ax.legend(fontsize=8)
        _plots.save(fig, store.figure(f"info_{slug}"))

        fig, ax = _plots.figure()
        ax.plot(steps, r.test_accuracy.values[ok], "C0-", label="F_t test")
        ax.plot(steps, r.train_accuracy.values[ok], "C0:", label="F_t train")
        ax.axhline(float(r.linear_test_accuracy), color="k", ls="--", lw=1, label="L test")
        ax.set_xscale("log")
        ax.set(xlabel="SGD step", ylabel="accuracy", title=f"{name}: accuracy of F_t and L")
        ax.legend(fontsize=8)
        _plots.save(fig, store.figure(f"accuracy_{slug}"))
