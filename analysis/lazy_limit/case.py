"""The lazy-limit experiment: per (dataset, width), one `lazyrich.theory.lazy_vs_network` call.

That call trains the centred model `scaled(net, gamma=γ, centre=True)` at every γ with the
training engine (full-batch GD, loss `"half_mse"` = `1/(2P) Σ (f − y)²`, step `η0·N`, γ
vmapped, float64 per γ through `x64=`) and returns the closed-form empirical- and
infinite-width-NTK predictions at the same steps. The kernel distance to init on the probe
points is an engine measure, evaluated at the kernel steps only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lazyrich.kernels import empirical_ntk, kernel_distance
from lazyrich.models import MLP
from lazyrich.theory import effective_rate, kernel_gd_predictions, lazy_vs_network, network_kernels
from lazyrich.train import Snapshot

from .config import THRESHOLD, Config, load_data, lr_scale


def kernel_distance_measure(ksteps: np.ndarray, probe: int):
    """A measure: `1 − cos(K0, Kt)` of the empirical NTK on the first `probe` training points
    at the steps `ksteps` (NaN at other records). The kernel of `f = (net − net₀)/γ` is
    `Θ_net/γ²`; the cosine distance does not see the scale."""
    wanted = np.asarray(ksteps, np.int32)

    def measure(s: Snapshot) -> jax.Array:
        xp = s.data.x_train[:probe]

        def distance():
            k0 = empirical_ntk(s.apply, s.params0, xp)
            return kernel_distance(k0, empirical_ntk(s.apply, s.params, xp))

        nan = lambda: jnp.asarray(jnp.nan, xp.dtype)
        return jax.lax.cond(jnp.any(s.step == jnp.asarray(wanted)), distance, nan)

    return measure


def predictions(k_all, p: int, data, gammas, eta0, width: int, steps) -> tuple[np.ndarray, ...]:
    """Closed-form train/test losses `(γ, step)` for the unscaled net kernel `k_all` on
    `[x_train; x_test]` (P + Q points)."""
    _, y_tr, _, y_te = (jnp.asarray(a) for a in data)
    ktr, kte = k_all[:p, :p], k_all[p:, :p]
    train, test = [], []
    for g, e0 in zip(gammas, eta0, strict=True):
        rate = effective_rate(float(e0), gamma=float(g), lr_multiplier=float(width))
        pred = kernel_gd_predictions(
            ktr, kte, y_tr, jnp.asarray(steps), eta=rate, method="gd", y_test=y_te
        )
        train.append(np.asarray(pred.train_loss))
        test.append(np.asarray(pred.test_loss))
    return np.stack(train), np.stack(test)


def relative_gap(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """`|measured − predicted| / predicted`, elementwise."""
    return np.abs(measured - predicted) / predicted


def _x64(c: Config):
    return {
        "auto": lambda hp: bool(hp["gamma"] < c.float64_below),
        "always": True,
        "never": False,
    }[c.float64]


def run_case(c: Config, name: str, gammas: np.ndarray, steps, ksteps, progress: bool) -> dict:
    """Every width of one dataset: training, both predictions, gaps, kernel distances."""
    data = load_data(name, c)
    p = c.n_train
    x_all = np.concatenate([data[0], data[2]])
    use64 = {
        "auto": gammas < c.float64_below,
        "always": np.ones(gammas.size, bool),
        "never": np.zeros(gammas.size, bool),
    }[c.float64]
    keys = ("train_loss", "test_loss", "kernel_distance", "diverged")
    out: dict[str, Any] = {k: [] for k in (*keys, "emp_train", "emp_test", "init_to_inf")}
    out["k_emp"] = []
    eta0 = None
    kd = kernel_distance_measure(ksteps, c.probe)
    kidx = np.searchsorted(steps, ksteps)
    for width in c.widths:
        with jax.enable_x64(True):
            net = MLP(
                x_all.shape[1],
                width,
                c.depth - 1,  # L weight layers = L − 1 hidden layers
                1,
                activation=c.activation,
                parameterization="mup",
                dtype=jnp.float64,
                key=jax.random.fold_in(jax.random.key(c.seed), 0),
            )
        mats = network_kernels(net, x_all, chunk_size=c.chunk_size or None)
        if eta0 is None:  # the lazy scale, from the width-independent N·Θ_mup
            lam = float(np.linalg.eigvalsh(width * mats["infinite"][:p, :p])[-1])
            eta0 = c.lr * p / lam * lr_scale(gammas, c.depth)
        assert eta0 is not None
        ds = lazy_vs_network(
            net,
            *data,
            gamma=gammas,
            eta0=eta0,
            steps=steps,
            kernels=mats,
            x64=_x64(c),
            measures={"kernel_distance": kd},
            keep_initial=True,
            threshold=THRESHOLD,
            progress=progress,
            description=f"lazy-limit {name} N={width}",
        )
        if "inf_train" not in out:  # width-independent: from the first width, as before
            out["inf_train"] = ds.infinite_train_loss.values
            out["inf_test"] = ds.infinite_test_loss.values
        out["train_loss"].append(ds.train_loss.values)
        out["test_loss"].append(ds.test_loss.values)
        out["kernel_distance"].append(ds.kernel_distance.values[:, kidx])
        out["diverged"].append(ds.diverged.values)
        out["emp_train"].append(ds.empirical_train_loss.values)
        out["emp_test"].append(ds.empirical_test_loss.values)
        with jax.enable_x64(True):
            k_emp, k_inf = (jnp.asarray(mats[k]) for k in ("empirical", "infinite"))
            out["init_to_inf"].append(float(kernel_distance(k_emp, k_inf)))
        out["k_emp"].append(mats["empirical"])
    arrays = {k: np.stack(v) for k, v in out.items() if isinstance(v, list)}
    assert eta0 is not None
    arrays.update(eta0=eta0, inf_train=out["inf_train"], inf_test=out["inf_test"])
    arrays["diverged"] = arrays["diverged"].astype(bool)
    arrays["float64"] = use64
    gaps = lambda tr, te: np.maximum(
        relative_gap(arrays["train_loss"], tr), relative_gap(arrays["test_loss"], te)
    )
    arrays["gap"] = gaps(arrays["emp_train"], arrays["emp_test"])
    arrays["gap_infinite"] = gaps(arrays["inf_train"][None], arrays["inf_test"][None])
    return arrays
