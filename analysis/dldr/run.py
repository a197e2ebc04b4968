"""The DLDR study's experiment: engine calls for SGD (with sampling), P-SGD and P-BFGS.

Every run's network comes from the factory `Network` with the key `fold_in(key(seed), 0)`
and uses the engine's data order of `seed` (`batch_indices(fold_in(key(seed), 1), n, batch,
t)`), so the subspace runs restart from the sampling run's `w₀` and see the same batches.
The SGD run records the flattened parameters (a measure) at the sampling steps. P-SGD and
P-BFGS run every `d` and seed in one engine call: `Subspace` holds one `P` per seed with
`max(d)` rows and keeps the first `d` (the run's grid value) of its seed's `P`, the others
zero. Zero rows change neither `PᵀP g` nor P-BFGS (those α-coordinates have zero gradient,
`H` keeps an identity block there and their step is zero), so each run is exactly the run
with its own `d × D` matrix.
"""

from __future__ import annotations

import hashlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

from lazyrich.data import Dataset, num_batches
from lazyrich.optim import dldr_subspace, p_bfgs, p_sgd
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, OptaxStep, Snapshot, Step, train

from .config import (
    NAME,
    Config,
    Network,
    build_network,
    dataset_of,
    load,
    num_samples,
    sample_steps,
    validate,
)
from .figures import figures
from .summary import condition_summary, to_dataset

CONDITIONS = ("clean", "label_noise")


def flat_params(s: Snapshot) -> jax.Array:
    """The measure that samples the trajectory: the run's parameters as one flat vector."""
    return ravel_pytree(s.params)[0]


def padded(p: Array, d: Array | int) -> Array:
    """The first `d` rows of `p`, the others zero (same shape as `p`)."""
    return jnp.where(jnp.arange(p.shape[0])[:, None] < d, p, 0.0)


class Subspace(Step):
    """P-SGD or P-BFGS in the first `hp["d"]` rows of the run's seed's `P`.

    **Fields:** `p` `(n_seeds, d_max, D)`, `seeds` (the seed of each `p[i]`), `method`
    (`"psgd"` or `"pbfgs"`), `lr` and `decay` (P-SGD: learning rate, and `(step, factor)`
    pairs of its piecewise-constant decay), `fallback` (P-BFGS with no accepted trial).
    """

    p: Float[Array, "s dmax D"]
    seeds: Int[Array, " s"]
    method: str = eqx.field(static=True)
    lr: float = eqx.field(static=True, default=0.1)
    decay: tuple[tuple[int, float], ...] = eqx.field(static=True, default=())
    fallback: str = eqx.field(static=True, default="zero")

    def _inner(self, hp) -> OptaxStep:
        p = padded(self.p[jnp.argmax(self.seeds == hp["seed"])], hp["d"])
        if self.method == "psgd":
            lr = optax.piecewise_constant_schedule(self.lr, dict(self.decay))
            return OptaxStep(p_sgd(lr if self.decay else self.lr, p))
        return OptaxStep(p_bfgs(p, fallback=self.fallback))  # pyright: ignore[reportArgumentType]

    def init(self, params, *, apply, hp, key):
        return self._inner(hp).init(params, apply=apply, hp=hp, key=key)

    def update(self, params, state, batch, *, apply, hp, key, loss):
        return self._inner(hp).update(params, state, batch, apply=apply, hp=hp, key=key, loss=loss)


def config_tag(c: Config) -> str:
    """A short fingerprint of the config (part of every chunk tag, so a resumed run never
    loads chunks of another config)."""
    return hashlib.sha1(repr(c).encode()).hexdigest()[:8]


def sgd_with_samples(
    network: Network, data: Dataset, c: Config, seeds, **kw
) -> tuple[xr.Dataset, np.ndarray]:
    """The full SGD runs (one per seed); their per-epoch records and the sampled parameters
    `(n_seeds, t, D)`."""
    nb = num_batches(data.n_train, c.batch)
    samples_at = sample_steps(c, nb)
    epoch_ends = np.arange(c.full_epochs + 1) * nb
    res = train(
        network,
        optax.sgd(c.lr, momentum=0.9),
        data,
        record_at=np.union1d(samples_at, epoch_ends).tolist(),
        evaluate_at=epoch_ends.tolist(),
        grid=Grid.product(seed=list(seeds)),
        batch=c.batch,
        loss="ce",
        measures={"w": flat_params},
        **kw,
    )
    assert isinstance(res, xr.Dataset)
    samples = res.w.sel(step=samples_at).values.astype(np.float32)
    return res.drop_vars("w").sel(step=epoch_ends), samples


def subspace_runs(
    network: Network, p: Float[Array, "s dmax D"], data: Dataset, c: Config, seeds, step, **kw
) -> Any:
    """The `Subspace` step `step` (its `p` and `seeds` filled in here) from each seed's `w₀`
    for every `d` in `c.ds` and seed, one engine call; records at every epoch."""
    batch = c.batch if step.method == "psgd" else c.pbfgs_batch
    nb = num_batches(data.n_train, batch)
    step = eqx.tree_at(lambda s: (s.p, s.seeds), step, (p, jnp.asarray(seeds, jnp.int32)))
    res = train(
        network,
        step,
        data,
        record_at=(np.arange(c.subspace_epochs + 1) * nb).tolist(),
        grid=Grid.product(d=list(c.ds), seed=list(seeds)),
        batch=batch,
        loss="ce",
        **kw,
    )
    return res  # with return_params=True, (dataset, params)


def run_condition(
    net: str, data: Dataset, c: Config, store: StudyDir | None, progress: bool, label: str
) -> dict[str, np.ndarray]:
    """Full SGD with sampling, PCA, then P-SGD and P-BFGS for every d, on one dataset."""
    network = build_network(net, data, c)
    seeds = [c.seed]
    tag = f"{label}-{config_tag(c)}"
    kw = dict(store=store, progress=progress)
    sgd, samples = sgd_with_samples(
        network, data, c, seeds, tag=f"{tag}-sgd", description=f"{NAME} {label} sgd", **kw
    )
    pcas = [dldr_subspace(s, max(c.ds)) for s in samples]
    p = jnp.stack([q for q, _ in pcas])
    out = {
        "sgd_test_accuracy": sgd.test_accuracy.values[0],
        "sgd_train_accuracy": sgd.train_accuracy.values[0],
        "sgd_test_loss": sgd.test_loss.values[0],
        "explained_variance_ratio": np.asarray(pcas[0][1], np.float64),
        "num_params": np.asarray(samples.shape[-1]),
    }
    empty = jnp.zeros((0,), jnp.int32)
    for method in ("psgd", "pbfgs"):
        step = Subspace(p, empty, method, lr=c.psgd_lr)
        res = subspace_runs(
            network, p, data, c, seeds, step, tag=f"{tag}-{method}",
            description=f"{NAME} {label} {method}", **kw,
        )  # fmt: skip
        out[f"{method}_test_accuracy"] = res.test_accuracy.values[:, 0]
        out[f"{method}_train_accuracy"] = res.train_accuracy.values[:, 0]
    return out


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Run every network and label condition, write results.nc and figures, return the summary."""
    validate(c)
    conditions = CONDITIONS if c.label_noise > 0 else CONDITIONS[:1]
    results: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    summary: dict = {
        "samples": num_samples(c),
        "sample_epochs": c.sample_epochs,
        "subspace_epochs": c.subspace_epochs,
    }
    for net in c.networks:
        base = load(dataset_of(c, net), c)
        results[net] = {}
        entry: dict = {"dataset": base.name}
        for cond in conditions:
            data = base
            if cond == "label_noise":
                noise_key = jax.random.fold_in(jax.random.key(c.seed), 2)
                data = base.with_label_noise(c.label_noise, key=noise_key)
            res = run_condition(net, data, c, store, progress, f"{net}-{cond}")
            results[net][cond] = res
            s = condition_summary(res, c)
            if cond == "clean":
                entry.update(num_params=int(res["num_params"]), **s)
            else:
                entry["label_noise"] = {"fraction": c.label_noise, **s}
        summary[net] = entry

    ds = to_dataset(results, c, conditions)
    write_dataset(store.results_path, ds)
    figures(ds, store, c)
    return summary
