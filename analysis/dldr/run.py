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
from lazyrich.train import Grid, OptaxStep, Snapshot, Step, default_devices, train

from .claims import judge_claims
from .config import NAME, Config, Network, build_network, load, sample_steps, validate
from .figures import figures
from .summary import summarize, to_dataset
from .walk import step_norms


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
    fallback: str = eqx.field(static=True, default="smallest")

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


def epoch_records(data: Dataset, batch: int, epochs: int) -> list[int]:
    """The steps that end epochs `0..epochs` (batches of `batch`)."""
    return (np.arange(epochs + 1) * num_batches(data.n_train, batch)).tolist()


def sgd_with_samples(
    network: Network, data: Dataset, c: Config, epochs: int, **kw
) -> tuple[xr.Dataset, np.ndarray]:
    """Constant-rate SGD (momentum 0.9) for `epochs` epochs, one run per seed; its per-epoch
    records and the parameters sampled in its first `sample_epochs`, `(n_seeds, t, D)`."""
    nb = num_batches(data.n_train, c.batch)
    samples_at = sample_steps(c, nb)
    epoch_ends = np.asarray(epoch_records(data, c.batch, epochs))
    res = train(
        network,
        optax.sgd(c.lr, momentum=0.9),
        data,
        record_at=np.union1d(samples_at, epoch_ends).tolist(),
        evaluate_at=epoch_ends.tolist(),
        grid=Grid.product(seed=list(c.seeds)),
        batch=c.batch,
        loss="ce",
        measures={"w": flat_params},
        **kw,
    )
    assert isinstance(res, xr.Dataset)
    samples = res.w.sel(step=samples_at).values.astype(np.float32)
    return res.drop_vars("w").sel(step=epoch_ends), samples


def tuned_sgd(network: Network, data: Dataset, c: Config, **kw) -> xr.Dataset:
    """SGD (momentum 0.9) for every learning rate of `c.tuned_lrs` and seed, decayed ×0.1 at
    1/2 and 3/4 of `c.tuned_epochs`; records at every epoch."""
    nb = num_batches(data.n_train, c.batch)
    bounds = {c.tuned_epochs * nb // 2: 0.1, 3 * c.tuned_epochs * nb // 4: 0.1}

    def step(hp):
        return optax.sgd(optax.piecewise_constant_schedule(hp["eta"], bounds), momentum=0.9)

    res = train(
        network,
        step,
        data,
        record_at=epoch_records(data, c.batch, c.tuned_epochs),
        grid=Grid.product(eta=list(c.tuned_lrs), seed=list(c.seeds)),
        batch=c.batch,
        loss="ce",
        **kw,
    )
    assert isinstance(res, xr.Dataset)
    return res


def subspace_runs(network: Network, data: Dataset, c: Config, step: Subspace, ds, **kw) -> Any:
    """The `Subspace` step from each seed's `w₀`, for every `d` in `ds` and seed of `c`, one
    engine call (grid `d × seed`); records at every epoch."""
    batch = c.batch if step.method == "psgd" else c.pbfgs_batch
    res = train(
        network,
        step,
        data,
        record_at=epoch_records(data, batch, c.subspace_epochs),
        grid=Grid.product(d=list(ds), seed=list(c.seeds)),
        batch=batch,
        loss="ce",
        **kw,
    )
    return res  # with keep_params=True, lazyrich.train.final_params(res, network): the params


def random_subspace(size: int, d: int, seed: int) -> Float[Array, "d D"]:
    """`d` orthonormal random directions in `R^size` (QR of a Gaussian matrix), from `seed`."""
    key = jax.random.fold_in(jax.random.key(seed), 4)
    q, _ = jnp.linalg.qr(jax.random.normal(key, (size, d)))
    return q.T


def psgd_step(p, c: Config, data: Dataset) -> Subspace:
    """P-SGD with momentum 0.9, ×0.1 decay at 1/2 and 3/4 of `c.subspace_epochs`."""
    nb = num_batches(data.n_train, c.batch)
    decay = ((c.subspace_epochs * nb // 2, 0.1), (3 * c.subspace_epochs * nb // 4, 0.1))
    return Subspace(p, jnp.asarray(c.seeds, jnp.int32), "psgd", lr=c.psgd_lr, decay=decay)


def pbfgs_step(p, c: Config) -> Subspace:
    """P-BFGS with the config's fallback."""
    return Subspace(p, jnp.asarray(c.seeds, jnp.int32), "pbfgs", fallback=c.fallback)


def run_condition(
    data: Dataset,
    c: Config,
    store: StudyDir | None,
    progress: bool,
    cond: str,
    devices: int | None = None,
) -> dict[str, xr.Dataset | np.ndarray]:
    """One label condition: SGD with sampling, PCA, P-BFGS (and, clean: P-SGD, P-BFGS in a
    random subspace, tuned SGD); engine calls sharded over the first `devices` devices."""
    network = build_network(data, c)
    tag = f"{cond}-{config_tag(c)}"
    kw = dict(store=store, progress=progress, devices=default_devices(devices))
    clean = cond == "clean"
    epochs = c.sample_epochs + c.subspace_epochs if clean else c.noise_epochs
    desc = f"{NAME} {cond}"
    sgd, samples = sgd_with_samples(
        network, data, c, epochs, tag=f"{tag}-sgd", description=f"{desc} sgd", **kw
    )
    dmax = max(c.ds)
    pcas = [dldr_subspace(s, dmax) for s in samples]
    p = jnp.stack([q for q, _ in pcas])
    out: dict = {
        "sgd": sgd,
        "explained_variance_ratio": np.stack([np.asarray(r, np.float64) for _, r in pcas]),
        "step_norm": np.stack([step_norms(s) for s in samples]),
        "num_params": samples.shape[-1],
    }
    out["pbfgs"] = subspace_runs(
        network, data, c, pbfgs_step(p, c), c.ds, tag=f"{tag}-pbfgs",
        description=f"{desc} P-BFGS", **kw,
    )  # fmt: skip
    if clean:
        out["psgd"] = subspace_runs(
            network, data, c, psgd_step(p, c, data), c.ds, tag=f"{tag}-psgd",
            description=f"{desc} P-SGD", **kw,
        )  # fmt: skip
        size = samples.shape[-1]
        rand = jnp.stack([random_subspace(size, dmax, s) for s in c.seeds]).astype(p.dtype)
        out["random"] = subspace_runs(
            network, data, c, pbfgs_step(rand, c), [dmax], tag=f"{tag}-random",
            description=f"{desc} random P-BFGS", **kw,
        )  # fmt: skip
        out["tuned"] = tuned_sgd(
            network, data, c, tag=f"{tag}-tuned", description=f"{desc} tuned SGD", **kw
        )
    return out


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Run both label conditions, write results.nc and figures, return the summary (its
    `claims`: one row per claim of `declare(c)`, judged on per-seed values)."""
    validate(c)
    base = load(c)
    results = {"clean": run_condition(base, c, store, progress, "clean", devices)}
    if c.label_noise > 0:
        noise_key = jax.random.fold_in(jax.random.key(c.seeds[0]), 2)
        noisy = base.with_label_noise(c.label_noise, key=noise_key)
        results["label_noise"] = run_condition(noisy, c, store, progress, "label_noise", devices)
    ds = to_dataset(results, c)
    write_dataset(store.results_path, ds)
    summary = summarize(ds, c, base.name)
    summary["claims"] = judge_claims(summary, c)
    figures(ds, store, c)
    return summary
