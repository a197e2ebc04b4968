"""The kernel-limits experiment for one (dataset, seed): the DMFT, the NTK closed form and the
networks at every width, all at the same (γ, η0, step).

The theories come from `lazyrich.theory` (`dmft`, `infinite_ntk`, `kernel_gd_predictions`),
as `lazyrich.theory.rich_vs_network` sets them; the networks are trained here with the engine
directly (`lazyrich.train.train`, γ vmapped, float64, one compiled program per width shared by
every seed) because the study also records a measure of each run: the kernel-target alignment
of its empirical NTK on the training points, at initialisation and after the last step.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.data import Dataset
from lazyrich.kernels import empirical_ntk, kernel_alignment
from lazyrich.models import MLP, scaled
from lazyrich.theory import dmft, infinite_ntk, kernel_gd_predictions
from lazyrich.train import Factory, Grid, Snapshot, train

from .config import NAME, THRESHOLD, Config, eta0s, load_data, record_steps


class CentredMLP(Factory):
    """`scaled(MLP(D, N, L − 1, 1, μP), gamma=γ, centre=True)` for a run's γ (a `Factory`:
    equal fields share the engine's compiled programs across seeds)."""

    dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __call__(self, key, hp):
        """**Arguments:** `key` (the initialisation), `hp` (the run's `gamma`).

        **Returns:** the centred, γ-scaled μP MLP."""
        net = MLP(
            self.dim,
            self.width,
            self.depth - 1,
            1,
            activation=self.activation,
            parameterization="mup",
            key=key,
        )
        return scaled(net, gamma=hp["gamma"], centre=True)


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
    gammas = np.asarray(c.gammas, np.float64)
    steps = record_steps(c)
    k = infinite_ntk(np.concatenate([xtr, xte]), depth=c.depth, activation=c.activation)
    eta0 = eta0s(c, k[:p, :p])
    theory = dmft(
        xtr,
        ytr,
        xte,
        y_test=yte,
        depth=c.depth,
        activation=c.activation,
        gamma=gammas,
        eta0=eta0,
        steps=steps,
        samples=c.samples,
        batches=c.batches,
        key=jax.random.fold_in(jax.random.key(seed), 7),
    )
    out: dict[str, Any] = {"eta0": eta0}
    for part in ("train", "test"):
        out[f"dmft_{part}"] = theory[f"{part}_loss"].values
        err = theory.get(f"{part}_loss_mc_error")
        out[f"dmft_{part}_mc_error"] = (
            err.values if err is not None else np.zeros_like(out[f"dmft_{part}"])
        )
    ntk_train, ntk_test = [], []
    with jax.enable_x64(True):
        kj = jnp.asarray(k)
        for g, e0 in zip(gammas, eta0, strict=True):
            pred = kernel_gd_predictions(
                kj[:p, :p],
                kj[p:, :p],
                jnp.asarray(ytr),
                jnp.asarray(steps),
                eta=float(e0) / float(g) ** 2,
                method="gd",
                y_test=jnp.asarray(yte),
            )
            ntk_train.append(np.asarray(pred.train_loss))
            ntk_test.append(np.asarray(pred.test_loss))
        data = Dataset(
            *(jnp.asarray(a) for a in (xtr, ytr[:, None], xte, yte[:, None])),
            name=NAME,  # one name: both datasets share the compiled programs
            num_classes=0,
        )
    out["ntk_train"], out["ntk_test"] = np.stack(ntk_train), np.stack(ntk_test)
    keys = ("train_loss", "test_loss", "alignment0", "alignment", "diverged")
    net: dict[str, list] = {k: [] for k in keys}
    for width in c.widths:
        ds = train(
            CentredMLP(xtr.shape[1], int(width), c.depth, c.activation),
            lambda hp: optax.sgd(hp["eta"]),
            data,
            grid=Grid.product(gamma=gammas, eta=(eta0 * width)[:, None], seed=[seed]),
            record_at=[int(t) for t in steps],
            batch=None,
            loss="half_mse",
            measures={"alignment": Alignment(int(steps[-1]))},
            threshold=THRESHOLD,
            x64=True,
            devices=devices,
            progress=progress,
            description=f"kernel-limits {name} seed {seed} N={width}",
        )
        ds = ds.isel(eta=0, seed=0, drop=True).transpose("gamma", "step")
        net["train_loss"].append(ds["train_loss_full"].values)
        net["test_loss"].append(ds["test_loss"].values)
        net["alignment0"].append(ds["alignment"].values[:, 0])
        net["alignment"].append(ds["alignment"].values[:, -1])
        net["diverged"].append(ds["diverged"].values)
    out.update({k: np.stack(v, axis=1) for k, v in net.items()})  # (gamma, width, ...)
    out["diverged"] = out["diverged"].astype(bool)
    return out
