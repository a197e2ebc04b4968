"""Finite networks beside both infinite-width theories in one call: `rich_vs_network`.

At each width N and seed, the centred μP MLP `scaled(MLP(D, N, L − 1, 1, mup), gamma=γ)` is
trained by full-batch GD on `half_mse` at the rate `η0 · N` through the training engine
(`lazyrich.train.train`, γ and seed as vmapped axes, one compiled program per width). Beside
it: the DMFT at the same (γ, η0, step) (`lazyrich.theory.dmft`, the N → ∞ limit at fixed γ) and
the lazy theory (`kernel_gd_predictions` with the infinite-width NTK K and rate η0/γ², the
γ → 0 limit). Conventions are those of `lazyrich.theory._dmft`; the network's output is
centred, so every curve starts at `½ mean y²`. Optional `measures` (as in `train`) are recorded
on every network run beside the losses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jax.typing import ArrayLike

from ..data import Dataset
from ..errors import require
from ..models import MLP, scaled
from ..train import Factory, Grid, Snapshot, train
from ._dmft import _as_inputs, _as_targets, _check, dmft, infinite_ntk
from ._lazy import kernel_gd_predictions

# variables of the engine's output that are not measures
_ENGINE_VARS = frozenset(
    {"train_loss", "test_loss", "test_accuracy", "train_loss_full", "train_accuracy"}
    | {"diverged", "diverged_step"}
)


class _CentredMLP(Factory):
    """`scaled(MLP(D, N, L − 1, 1, μP), gamma=γ, centre=True)` for a run's γ. A `Factory`:
    equal fields share the engine's compiled programs across calls (seeds, datasets)."""

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


def rich_vs_network(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    *,
    depth: int,
    activation: str,
    gamma: float | Sequence[float] | np.ndarray,
    eta0: float | Sequence[float] | np.ndarray,
    steps: Sequence[int] | np.ndarray,
    widths: Sequence[int],
    seeds: Sequence[int],
    solver: str = "auto",
    samples: int = 4096,
    batches: int = 8,
    key: jax.Array | None = None,
    x64: bool | Callable[[dict[str, float]], bool] | None = True,
    progress: bool = False,
    measures: Mapping[str, Callable[[Snapshot], Any]] | None = None,
    threshold: float = 1e6,
    devices: Sequence[Any] | None = None,
    description: str = "rich vs network",
) -> xr.Dataset:
    """Train μP networks at every width and seed and set them beside the DMFT and the NTK.

    **Arguments:**

    - `x_train`, `y_train`, `x_test`, `y_test`: the data (one output: targets `(n,)` or
      `(n, 1)`).
    - `depth`: L, the number of weight layers (the network is `MLP(depth=L − 1)`).
    - `activation`: as for `dmft` (`"linear"` any L; `"tanh"`, `"relu"`, `"erf"` L = 2 or 3).
    - `gamma`: γ values; `eta0`: η0, one or one per γ (the network's rate is `η0 · N`).
    - `steps`: increasing GD step counts ≥ 0 at which losses are recorded.
    - `widths`: hidden widths N; `seeds`: initialisation seeds (a vmapped axis).
    - `solver`, `samples`, `batches`, `key`: passed to `dmft`.
    - `x64`, `progress`: the networks' precision and a progress bar, as in
      `lazyrich.train.train`.
    - `measures`: `name -> fn(snapshot)`, evaluated on every network run at every recorded
      step, as in `lazyrich.train.train` (e.g. the kernel-target alignment of the run's
      empirical NTK); a measure's shape must not depend on the width. Names must not be those
      of the returned variables.
    - `threshold`: a train loss above this (or non-finite) marks a run diverged.
    - `devices`: devices to shard the runs over (default: the engine's).
    - `description`: the progress bar's label (the width is appended).

    **Returns:** an `xarray.Dataset`: the network's `train_loss` and `test_loss` over
    `(gamma, width, seed, step)` (NaN after a divergence), each measure's variables (named as
    `train` names them) over `(gamma, width, seed, step, ...)` and `diverged` over
    `(gamma, width, seed)`; over `(gamma, step)` the DMFT's `dmft_train_loss`,
    `dmft_test_loss` (with `*_mc_error` for the sampling solver) and the lazy theory's
    `ntk_train_loss`, `ntk_test_loss`; `eta0` per γ.
    """
    _, gammas, eta0s, record = _check(depth, activation, gamma, eta0, steps, solver)
    wid = np.asarray(widths)
    require(
        wid.ndim == 1
        and wid.size >= 1
        and np.issubdtype(wid.dtype, np.integer)
        and bool(np.all(wid >= 1)),
        f"widths must be a list of integers >= 1, got {widths}",
    )
    measures = dict(measures or {})
    for m in measures:
        require(
            m not in ("train_loss", "test_loss", "diverged", "eta0")
            and not m.startswith(("dmft_", "ntk_")),
            f"measure name {m!r} clashes with a returned variable: rename the measure",
        )
    xtr, xte = _as_inputs(x_train, "x_train"), _as_inputs(x_test, "x_test")
    p, d = xtr.shape
    ytr = _as_targets(y_train, p, "y_train")
    yte = _as_targets(y_test, xte.shape[0], "y_test")
    theory = dmft(
        xtr,
        ytr,
        xte,
        y_test=yte,
        depth=depth,
        activation=activation,
        gamma=gammas,
        eta0=eta0s,
        steps=record,
        solver=solver,
        samples=samples,
        batches=batches,
        key=key,
    )
    with jax.enable_x64(True):  # float64 arrays; the engine casts them per chunk
        data = Dataset(
            *(jnp.asarray(a) for a in (xtr, ytr[:, None], xte, yte[:, None])),
            name="rich",
            num_classes=0,
        )
    train_l, test_l, diverged = [], [], []
    measured: dict[str, list[np.ndarray]] = {}
    measure_dims: dict[str, tuple[str, ...]] = {}
    for n in wid.tolist():
        ds = train(
            _CentredMLP(d, n, depth, activation),
            lambda hp: optax.sgd(hp["eta"]),
            data,
            grid=Grid.product(gamma=gammas, eta=(eta0s * n)[:, None], seed=list(seeds)),
            record_at=[int(t) for t in record],
            batch=None,
            loss="half_mse",
            measures=measures,
            threshold=threshold,
            x64=x64,
            devices=devices,
            progress=progress,
            description=f"{description}, width {n}",
        )
        ds = ds.isel(eta=0, drop=True)
        train_l.append(ds["train_loss_full"].transpose("gamma", "seed", "step").values)
        test_l.append(ds["test_loss"].transpose("gamma", "seed", "step").values)
        diverged.append(ds["diverged"].transpose("gamma", "seed").values)
        for var in ds.data_vars:
            name = str(var)
            if name in _ENGINE_VARS or not any(
                name == m or name.startswith(f"{m}_") for m in measures
            ):
                continue
            value = ds[name].transpose("gamma", "seed", "step", ...)
            measure_dims[name] = ("gamma", "width", *map(str, value.dims[1:]))
            measured.setdefault(name, []).append(value.values)
    net_dims = ("gamma", "width", "seed", "step")
    out = xr.Dataset(
        {
            "train_loss": (net_dims, np.stack(train_l, axis=1)),
            "test_loss": (net_dims, np.stack(test_l, axis=1)),
            "diverged": (("gamma", "width", "seed"), np.stack(diverged, axis=1)),
            "eta0": (("gamma",), eta0s),
        },
        coords={"gamma": gammas, "width": wid, "seed": np.asarray(seeds), "step": record},
        attrs={**theory.attrs, "network": "centred muP MLP, full-batch GD at eta0 * width"},
    )
    for name, values in measured.items():
        out[name] = (measure_dims[name], np.stack(values, axis=1))
    for name in theory.data_vars:
        if str(name).endswith("loss") or str(name).endswith("loss_mc_error"):
            out[f"dmft_{name}"] = theory[name]
    k_np = infinite_ntk(np.concatenate([xtr, xte]), depth=depth, activation=activation)
    ntk_train, ntk_test = [], []
    with jax.enable_x64(True):
        k = jnp.asarray(k_np)
        for g, e0 in zip(gammas, eta0s, strict=True):
            pred = kernel_gd_predictions(
                k[:p, :p],
                k[p:, :p],
                jnp.asarray(ytr),
                jnp.asarray(record),
                eta=float(e0) / float(g) ** 2,
                method="gd",
                y_test=jnp.asarray(yte),
            )
            ntk_train.append(np.asarray(pred.train_loss))
            ntk_test.append(np.asarray(pred.test_loss))
    out["ntk_train_loss"] = (("gamma", "step"), np.stack(ntk_train))
    out["ntk_test_loss"] = (("gamma", "step"), np.stack(ntk_test))
    return out
