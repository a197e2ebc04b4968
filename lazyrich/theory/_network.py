"""A network and its lazy (kernel) theory in one call: `lazy_vs_network`.

The centred model `f = (net − net₀)/γ` (`lazyrich.models.scaled`) is trained by full-batch
gradient descent with the training engine (`lazyrich.train.train`, the γ axis vmapped) and its
train and test losses are set beside the closed-form kernel-regression dynamics
(`kernel_gd_predictions`, exact discrete GD) of the same step count, for the empirical NTK of
`net` at initialisation and/or the infinite-width NTK of its neural-tangents twin.

**Convention.** Loss `L = 1/(2 P k) Σ (f − y)²` over the P training points and k outputs (the
engine's `"half_mse"`, `neural_tangents.predict`'s normalisation); step `θ ← θ − η ∇L` with
`η = η0 · m`, m the net's `lr_multiplier` (the width N under μP, else 1). The theory is fed the
kernel `Θ_net` of the *unscaled* net with `effective_rate(η0, gamma=γ, lr_multiplier=m) =
η0 m/γ²`. Since `f(0) = 0`, both start from `½ mean y²`. As γ → 0 the network is its
linearization and the two agree at every step (float64 is needed there: the centred output
`net − net₀` cancels to ~γ · 1e-7 relative error in float32).
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
from ..kernels import empirical_ntk, infinite_kernels
from ..models import CNN, MLP, Scaled, functional, scaled
from ..train import Grid, Snapshot, train
from ._lazy import effective_rate, kernel_gd_predictions

KERNELS = ("empirical", "infinite")


def _cast(tree: Any, dtype) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(a, dtype) if eqx.is_inexact_array(a) else a, tree)


def _has_twin(model: Any) -> bool:
    """Whether `model` has an infinite-width twin (`lazyrich.kernels.infinite_kernels`):
    lazyrich's `MLP` or `CNN`, optionally inside `scaled`."""
    net = model.net if isinstance(model, Scaled) else model
    return isinstance(net, (MLP, CNN))


def _kernel_names(model: Any, kernels: Sequence[str] | None) -> tuple[str, ...]:
    if kernels is None:
        return KERNELS if _has_twin(model) else ("empirical",)
    for k in kernels:
        require(k in KERNELS, f"unknown kernel {k!r}: choose from {', '.join(KERNELS)}")
    require(
        "infinite" not in kernels or _has_twin(model),
        f"{type(model).__module__.split('.')[0]}.{type(model).__name__} has no infinite-width "
        "twin in lazyrich (only lazyrich's MLP and CNN do): pass kernels=('empirical',), or "
        "kernels={'infinite': K} with a kernel you computed (e.g. with lazyrich.kernels.nt)",
    )
    return tuple(kernels)


def network_kernels(
    model: eqx.Module,
    x: ArrayLike,
    kernels: Sequence[str] | None = None,
    *,
    chunk_size: int | None = None,
) -> dict[str, np.ndarray]:
    """The NTKs `Θ_net(x, x)` of the unscaled `model` at its init, in float64 (one output).

    **Arguments:**

    - `model`: the network: lazyrich's (e.g. a μP `MLP` with one output) or any Equinox
      module, batched or per-example (`eqx.nn.MLP`; see `lazyrich.functional`).
    - `x`: the inputs (training points, then test points).
    - `kernels`: among `"empirical"` (`lazyrich.kernels.empirical_ntk`) and `"infinite"`
      (`lazyrich.kernels.infinite_kernels`, the width-N twin's kernel, μP factor included;
      lazyrich's `MLP` and `CNN` only). Default: both where a twin exists, else
      `("empirical",)`.
    - `chunk_size`: examples per block of the empirical NTK (bounds memory).

    **Returns:** `{name: (n, n) array}`.
    """
    kernels = _kernel_names(model, kernels)
    out = {}
    with jax.enable_x64(True):
        net = _cast(model, jnp.float64)
        xa = jnp.asarray(x, jnp.float64)
        if "empirical" in kernels:
            params, apply = functional(net)  # an Apply: the structured NTK, compiled once
            out["empirical"] = np.asarray(empirical_ntk(apply, params, xa, chunk_size=chunk_size))
        if "infinite" in kernels:
            out["infinite"] = np.asarray(infinite_kernels(net, xa).ntk)
    return out


def lazy_vs_network(
    model: eqx.Module,
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    *,
    gamma: Sequence[float] | np.ndarray,
    eta0: float | Sequence[float] | np.ndarray,
    steps: Sequence[int] | np.ndarray,
    kernels: Sequence[str] | Mapping[str, np.ndarray] | None = None,
    x64: bool | Callable[[dict[str, float]], bool] | None = True,
    measures: Mapping[str, Callable[[Snapshot], Any]] | None = None,
    keep_initial: bool = False,
    threshold: float = 1e6,
    progress: bool = False,
    description: str = "lazy vs network",
) -> xr.Dataset:
    """Train the centred network at every γ and predict its losses from kernel theory.

    Loss `L = 1/(2 P k) Σ (f − y)²`, full-batch GD `θ ← θ − η0·m ∇L` (m = the net's
    `lr_multiplier`); see the module docstring for the mapping to the closed form.

    **Arguments:**

    - `model`: the unscaled network (one init shared by every γ): lazyrich's or any Equinox
      module, batched or per-example (`eqx.nn.MLP`, see `lazyrich.functional`); it is
      wrapped as `scaled(model, gamma=γ, centre=True)` per run.
    - `x_train`, `y_train`, `x_test`, `y_test`: the data (targets `(n, k)` floats).
    - `gamma`: the γ values (a vmapped axis of one engine call).
    - `eta0`: the base learning rate, one for every γ or one per γ.
    - `steps`: increasing GD step counts >= 0 at which losses are recorded and predicted.
    - `kernels`: names among `"empirical"` and `"infinite"` (computed by `network_kernels`
      on `[x_train; x_test]`; default both where the model has an infinite-width twin, else
      the empirical one), or a mapping `name -> Θ_net` on `[x_train; x_test]`
      (`(P + Q, P + Q)`, per output) to reuse kernels already computed.
    - `x64`: the network's precision: as in `lazyrich.train.train` (a function of the run's
      `{"gamma", "eta"}` to choose per γ). The closed forms are float64.
    - `measures`, `keep_initial`, `threshold`, `progress`, `description`: passed to the engine
      (measures come back as variables over `(gamma, step)`).

    **Returns:** an `xarray.Dataset` over `(gamma, step)`: the network's `train_loss` and
    `test_loss` (NaN after a divergence), `{kernel}_train_loss` and `{kernel}_test_loss` per
    kernel, the measures, `diverged`, `diverged_step` and `eta0` per γ, and `ntk_{kernel}`
    (`Θ_net` on `[x_train; x_test]`, dims `point`, `point_`).
    """
    gammas = np.atleast_1d(np.asarray(gamma, np.float64))
    require(gammas.ndim == 1 and bool(np.all(gammas > 0)), f"gamma must be > 0, got {gamma}")
    eta0s = np.broadcast_to(np.asarray(eta0, np.float64), gammas.shape).copy()
    require(bool(np.all(eta0s > 0)), f"eta0 must be > 0, got {eta0}")
    record = np.asarray(steps, np.int64)
    xtr, xte = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    ytr = np.asarray(y_train, np.float64).reshape(xtr.shape[0], -1)
    yte = np.asarray(y_test, np.float64).reshape(xte.shape[0], -1)
    p = xtr.shape[0]
    if isinstance(kernels, Mapping):
        mats = {k: np.asarray(v, np.float64) for k, v in kernels.items()}
    else:
        mats = network_kernels(model, np.concatenate([xtr, xte]), kernels)
    mult = float(getattr(model, "lr_multiplier", 1.0))
    # the init as float64 NumPy constants, cast to each chunk's precision in the factory
    net64 = jax.tree.map(
        lambda a: np.asarray(a, np.float64) if eqx.is_inexact_array(a) else a, model
    )

    def make_model(key, hp):
        del key  # one initialisation for every γ
        return scaled(_cast(net64, jnp.result_type(float)), gamma=hp["gamma"], centre=True)

    with jax.enable_x64(True):  # float64 arrays; the engine casts them per chunk
        data = Dataset(*(jnp.asarray(a) for a in (xtr, ytr, xte, yte)), name="lazy", num_classes=0)
    ds = train(
        make_model,
        lambda hp: optax.sgd(hp["eta"]),
        data,
        grid=Grid.product(gamma=gammas, eta=(eta0s * mult)[:, None]),
        record_at=[int(t) for t in record],
        batch=None,
        loss="half_mse",
        measures=measures,
        keep_initial=keep_initial,
        threshold=threshold,
        x64=x64,
        progress=progress,
        description=description,
    )
    ds = ds.isel(eta=0, drop=True)
    step_dims = ("gamma", "step")
    out = xr.Dataset(
        {
            "train_loss": (step_dims, ds["train_loss_full"].values),
            "test_loss": (step_dims, ds["test_loss"].values),
            **{
                k: (ds[k].dims, ds[k].values)
                for k in ds.data_vars
                if k not in ("train_loss", "train_loss_full", "test_loss")
                and k not in ("test_accuracy", "train_accuracy")
            },
            "eta0": (("gamma",), eta0s),
        },
        coords={"gamma": gammas, "step": record},
        attrs={
            "loss": "1/(2 P k) sum (f - y)^2",
            "learning_rate": f"eta0 * {mult:g} (the net's lr_multiplier)",
            "theory": "exact discrete GD of kernel regression with Theta_net and "
            "eta = eta0 * lr_multiplier / gamma^2",
        },
    )
    with jax.enable_x64(True):
        for name, k in mats.items():
            require(
                k.shape == (p + xte.shape[0],) * 2,
                f"kernel {name!r} has shape {k.shape}: pass Θ_net on [x_train; x_test]",
            )
            kj = jnp.asarray(k)
            train_l, test_l = [], []
            for g, e0 in zip(gammas, eta0s, strict=True):
                pred = kernel_gd_predictions(
                    kj[:p, :p],
                    kj[p:, :p],
                    jnp.asarray(ytr),
                    jnp.asarray(record),
                    eta=effective_rate(float(e0), gamma=float(g), lr_multiplier=mult),
                    method="gd",
                    y_test=jnp.asarray(yte),
                )
                train_l.append(np.asarray(pred.train_loss))
                test_l.append(np.asarray(pred.test_loss))
            out[f"{name}_train_loss"] = (step_dims, np.stack(train_l))
            out[f"{name}_test_loss"] = (step_dims, np.stack(test_l))
            out[f"ntk_{name}"] = (("point", "point_"), k)
    return out
