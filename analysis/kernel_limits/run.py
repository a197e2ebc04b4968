"""The kernel-limits study's entry point: every dataset and seed, results.nc, the figure and
the summary (distances per width and γ, the parting γ, alignments, the claims)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import default_devices

from .case import run_case
from .claims import PART, distance, judge_all
from .config import NAME, Config, gamma_index, record_steps, seeds, validate
from .figures import loss_curves

NET = ("train_loss", "test_loss", "alignment0", "alignment", "diverged")
THEORY = (
    "dmft_train", "dmft_test", "dmft_train_mc_error", "dmft_test_mc_error",
    "ntk_train", "ntk_test",
)  # fmt: skip


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Train the networks, solve both theories per dataset and seed; write results.nc and the
    figure; return the summary with its claims rows."""
    validate(c)
    devs = default_devices(devices)
    steps = record_steps(c)
    per_seed = [
        {d: run_case(c, d, s, progress=progress, devices=devs) for d in c.datasets}
        for s in seeds(c)
    ]
    ds = _dataset(c, steps, per_seed)
    write_dataset(store.results_path, ds)
    loss_curves(c, steps, per_seed[0], store, c.seed)
    return {
        "datasets": list(c.datasets),
        "widths": list(c.widths),
        "gammas": list(c.gammas),
        "seeds": seeds(c),
        **_headlines(c, ds),
        "diverged_runs": int(ds.diverged.sum()),
        "claims": judge_all(c, per_seed),
    }


def _headlines(c: Config, ds: xr.Dataset) -> dict:
    """Seed means: network–DMFT distance per width at gamma_width, DMFT–NTK distance and the
    widest network's final alignment per γ, the DMFT's largest Monte-Carlo error."""
    gi = gamma_index(c)
    mean = lambda a: np.nanmean(a, axis=0)  # over seeds

    def both(a: str, b: str, expand: bool = False) -> np.ndarray:  # train and test averaged
        pair = []
        for k in ("train", "test"):
            ref = ds[b.format(k)].values
            pair.append(distance(ds[a.format(k)].values, ref[:, :, :, None] if expand else ref))
        return 0.5 * (pair[0] + pair[1])

    net = both("{}_loss", "dmft_{}", expand=True)  # (dataset, seed, gamma, width)
    wide = int(np.argmax(c.widths))
    gkey = lambda g: f"{g:.3g}"
    out: dict = {"network_to_dmft": {}, "dmft_to_ntk": {}, "final_alignment": {}, "mc_error": {}}
    dn = both("dmft_{}", "ntk_{}")
    for i, d in enumerate(c.datasets):
        out["network_to_dmft"][d] = {
            str(w): float(mean(net[i, :, gi, k])) for k, w in enumerate(c.widths)
        }
        out["dmft_to_ntk"][d] = {gkey(g): float(mean(dn[i, :, j])) for j, g in enumerate(c.gammas)}
        out["final_alignment"][d] = {
            gkey(g): float(mean(ds.alignment.values[i, :, j, wide])) for j, g in enumerate(c.gammas)
        }
        out["mc_error"][d] = float(ds.dmft_test_mc_error.values[i].max())
    out["gamma_width"] = c.gamma_width
    out["part_threshold"] = PART
    return out


def _dataset(c: Config, steps, per_seed: list[dict]) -> xr.Dataset:
    st = lambda k: np.stack([np.stack([r[d][k] for r in per_seed]) for d in c.datasets])
    net_dims = ("dataset", "seed", "gamma", "width")
    theory_dims = ("dataset", "seed", "gamma", "step")
    data: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        k: ((*net_dims, "step"), st(k)) for k in ("train_loss", "test_loss")
    }
    data.update({k: (net_dims, st(k)) for k in ("alignment0", "alignment", "diverged")})
    data.update({k: (theory_dims, st(k)) for k in THEORY})
    data["eta0"] = (("dataset", "seed", "gamma"), st("eta0"))
    return xr.Dataset(
        data,
        coords={
            "dataset": list(c.datasets),
            "seed": seeds(c),
            "gamma": list(c.gammas),
            "width": list(c.widths),
            "step": steps,
        },
        attrs={
            "study": NAME,
            "loss": "1/(2P) sum (f - y)^2, one output",
            "learning_rate": "eta0 * width (muP); DMFT rate eta0 / gamma^2, DMFT gamma0 = gamma",
            "eta0": "lr * P / lambda_max(K_inf) * s(gamma)",
            "s_gamma": "gamma^2 for gamma <= 1, gamma^(2/L) above, L = depth weight layers",
            "alignment": "<K, y y^T>_F / (|K|_F |y y^T|_F), empirical NTK on the train points",
        },
    )
