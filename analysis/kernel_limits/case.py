"""The kernel-limits experiment for one (dataset, seed): the DMFT, the NTK closed form and the
networks at every width, all at the same (γ, η0, step).

One call of `lazyrich.theory.rich_vs_network` (the networks through the engine, γ vmapped,
float64, one compiled program per width shared by every seed and dataset; the DMFT; the lazy
NTK theory), with one measure recorded on each network run: the kernel-target alignment of
its empirical NTK on the training points, at initialisation and after the last step.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lazyrich.kernels import empirical_ntk, kernel_alignment
from lazyrich.theory import infinite_ntk, rich_vs_network
from lazyrich.train import Snapshot

from .config import NAME, THRESHOLD, Config, eta0s, load_data, record_steps


class Alignment(eqx.Module):
    """A measure: the kernel-target alignment of the run's empirical NTK on the training points
    at step 0 and at step `last` (NaN at the other records; the NTK's scale 1/γ² is not seen)."""

    last: int = eqx.field(static=True)

    def __call__(self, s: Snapshot) -> jax.Array:
        """**Arguments:** `s`, the run's snapshot. **Returns:** the alignment, a scalar."""
        x, y = s.data.x_train, s.data.y_train

        def align():
            return kernel_alignment(empirical_ntk(s.apply, s.params, x), y)

        nan = lambda: jnp.asarray(jnp.nan, x.dtype)
        return jax.lax.cond((s.step == 0) | (s.step == self.last), align, nan)


def run_case(c: Config, name: str, seed: int, *, progress: bool, devices) -> dict[str, Any]:
    """Every width of one dataset and seed beside the DMFT and the NTK theory.

    **Arguments:**

    - `c`: the study's config; `name`: the dataset; `seed`: the data draw and the networks'
      initialisation seed.
    - `progress`, `devices`: passed to the engine.

    **Returns:** NumPy arrays: `train_loss`, `test_loss` `(gamma, width, step)`,
    `alignment0`, `alignment` `(gamma, width)` (init and last step), `diverged`
    `(gamma, width)`, and over `(gamma, step)` `dmft_*`, `dmft_*_mc_error`, `ntk_*`; `eta0`
    per γ.
    """
    xtr, ytr, xte, yte = load_data(name, c, seed)
    p = xtr.shape[0]
    steps = record_steps(c)
    k = infinite_ntk(np.concatenate([xtr, xte]), depth=c.depth, activation=c.activation)
    eta0 = eta0s(c, k[:p, :p])
    ds = rich_vs_network(
        xtr,
        ytr,
        xte,
        yte,
        depth=c.depth,
        activation=c.activation,
        gamma=np.asarray(c.gammas, np.float64),
        eta0=eta0,
        steps=steps,
        widths=[int(w) for w in c.widths],
        seeds=[seed],
        samples=c.samples,
        batches=c.batches,
        key=jax.random.fold_in(jax.random.key(seed), 7),
        x64=True,
        progress=progress,
        measures={"alignment": Alignment(int(steps[-1]))},
        threshold=THRESHOLD,
        devices=devices,
        description=f"{NAME} {name} seed {seed}",
    )
    ds = ds.isel(seed=0, drop=True)
    out: dict[str, Any] = {"eta0": ds["eta0"].values}
    for part in ("train", "test"):
        out[f"dmft_{part}"] = ds[f"dmft_{part}_loss"].values
        err = ds.get(f"dmft_{part}_loss_mc_error")
        out[f"dmft_{part}_mc_error"] = (
            err.values if err is not None else np.zeros_like(out[f"dmft_{part}"])
        )
        out[f"ntk_{part}"] = ds[f"ntk_{part}_loss"].values
        out[f"{part}_loss"] = ds[f"{part}_loss"].values  # (gamma, width, step)
    out["alignment0"] = ds["alignment"].values[..., 0]
    out["alignment"] = ds["alignment"].values[..., -1]
    out["diverged"] = ds["diverged"].values.astype(bool)
    return out
