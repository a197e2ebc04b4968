"""Figures of the complexity study: information and accuracy against the SGD step, one figure
per task × network with the seeds overlaid (T0 dotted, T_L dash-dotted)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir

from .. import _plots


def figures(ds: xr.Dataset, store: StudyDir) -> None:
    """info_TASK_NETWORK and accuracy_TASK_NETWORK (runs are named TASK/NETWORK/SEED)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(ds.run.values):
        groups.setdefault("/".join(str(name).split("/")[:2]), []).append(i)
    for group, idx in groups.items():
        slug = group.replace("/", "_")
        (fig, ax), (fig2, ax2) = _plots.figure(), _plots.figure()
        for j, i in enumerate(idx):
            r = ds.isel(run=i)
            ok = np.isfinite(r.step.values) & (r.step.values > 0)
            steps = r.step.values[ok]
            lab = j == 0
            ax.plot(steps, r.I_FY.values[ok], "C0-", alpha=0.8, label="I(F_t; Y)" if lab else None)
            ax.plot(steps, r.mu.values[ok], "C1-", alpha=0.8, label="μ(F_t; L)" if lab else None)
            ax.plot(steps, r.I_LY_given_F.values[ok], "C2:", label="I(L; Y | F_t)" if lab else None)
            ax2.plot(steps, r.test_accuracy.values[ok], "C0-", label="F_t test" if lab else None)
            tr = r.train_accuracy.values[ok]
            fin = np.isfinite(tr)
            ax2.plot(steps[fin], tr[fin], "C0:", label="F_t train" if lab else None)
            for a in (ax, ax2):
                if np.isfinite(float(r.T0)):
                    a.axvline(float(r.T0), color="0.4", ls=":", lw=1, label="T0" if lab else None)
                if np.isfinite(float(r.T_L)):
                    a.axvline(float(r.T_L), color="C3", ls="-.", lw=1,
                              label="T_L" if lab else None)  # fmt: skip
        r0 = ds.isel(run=idx[0])
        ax.axhline(float(r0.I_LY), color="k", ls="--", lw=1, label="I(L; Y)")
        ax2.axhline(float(r0.linear_test_accuracy), color="k", ls="--", lw=1, label="L test")
        ax.set(xlabel="SGD step", ylabel="bits", title=f"{group}: information ({len(idx)} seeds)")
        ax2.set(xlabel="SGD step", ylabel="accuracy", title=f"{group}: accuracy of F_t and L")
        for a in (ax, ax2):
            a.set_xscale("log")
            a.legend(fontsize=8)
        _plots.save(fig, store.figure(f"info_{slug}"))
        _plots.save(fig2, store.figure(f"accuracy_{slug}"))
