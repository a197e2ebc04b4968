"""The training engine: a grid of runs as one compiled, vmapped program.

`train(model, step, data, grid=..., record_at=...)` trains every cell of a hyperparameter
grid (γ, η, seed, or any other named axis) and records metrics at chosen steps:

- **data**: a `Stream` (online: a fresh batch every step, shared by every run with the same
  seed), or a finite `lazyrich.data.Dataset` with epoch-shuffled mini-batches (`batch=`, the
  order a function of the run's seed and the step, `lazyrich.data.batch_indices`) or full-batch
  gradient descent (`batch=None`).
- **step**: an optax transformation, a function `hp -> transformation`, or a `Step` (see
  `lazyrich.train.Step`) for methods that are not gradient transformations.
- **model**: one model shared by every run (an `eqx.Module`), or `make_model(key, hp)` traced
  under `jax.vmap` (so γ can be an array leaf of the model, and each seed its own init).

Inside a chunk of runs every run is a slice of a `jax.vmap`, steps run in a `lax.fori_loop`
whose trip count is an array, and the run axis is sharded over devices with `shard_map`
(each device runs the unpartitioned program on its runs).

**Work that depends only on the seed is done once per seed.** A chunk's runs are laid out in
groups of one seed (`lazyrich.train._seeds`), and a step is a `vmap` over groups of a `vmap`
over a group's runs: the group's batch, the leaves of the model that depend on the seed alone
(read from the factory's jaxpr: a centred net's frozen initial copy, fixed random matrices)
and what is computed from them (the frozen copy's outputs on the batch) are computed once per
group, and the product of the shared batch with the runs' first-layer weights is one product
over the group's runs. Results therefore agree across chunk sizes and device counts to
floating-point rounding (that product is tiled by the number of runs in a group), not bit for
bit; a given call is deterministic.

The compiled programs are module-level `eqx.filter_jit` functions of a `_Spec` pytree: a
second call with the same structure (same step, same model shapes, same data shapes, a fresh
model or fresh data) reuses them.

**Divergence.** A run whose batch loss is non-finite or above `threshold` is frozen (its
parameters stop changing); `diverged_step` records the step, and every record after it is
NaN. Other runs are unaffected.

**Resume.** With a `store` (`lazyrich.results.StudyDir`), each finished chunk is saved under a
name derived from `tag` and a fingerprint of the call; a resumed call loads it instead of
recomputing. Chunks are deterministic, so an interrupted and resumed call gives results
bit-identical to an uninterrupted one. Several processes split the chunks (`process`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array
from tqdm.auto import tqdm

from ..data import Dataset, num_batches
from ..errors import require
from ..results import StudyDir
from ._distributed import default_devices, run_sharding
from ._grid import Grid
from ._losses import get_loss
from ._params import PARAMS_PREFIX
from ._programs import (
    Snapshot,
    Spec,
    Stream,
    evaluate_program,
    init_program,
    is_factory,
    step_program,
)
from ._seeds import seed_layout
from ._steps import as_step

Measure = Callable[[Snapshot], Array | Mapping[str, Array]]


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()[:10]


def _chunk_bounds(precision: np.ndarray, chunk_size: int) -> list[tuple[int, int]]:
    """Split runs into chunks of at most `chunk_size` that never mix float32 and float64."""
    bounds, lo = [], 0
    while lo < precision.size:
        hi = min(lo + chunk_size, precision.size)
        change = np.nonzero(precision[lo:hi] != precision[lo])[0]
        hi = lo + int(change[0]) if change.size else hi
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _cast_data(data, dtype):
    return jax.tree.map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a,
        data,
        is_leaf=lambda a: isinstance(a, jax.Array),
    )


def train(
    model: Any,
    step: Any,
    data: Stream | Dataset,
    *,
    record_at: Sequence[int] | np.ndarray,
    grid: Grid | None = None,
    batch: int | None = None,
    loss: str = "mse",
    measures: Mapping[str, Measure] | None = None,
    keep_initial: bool = False,
    evaluate_at: Sequence[int] | None = None,
    threshold: float = 1e6,
    eval_chunk: int = 4096,
    keep_params: bool = False,
    chunk_size: int | None = None,
    x64: bool | Callable[[dict[str, float]], bool] | None = None,
    store: StudyDir | None = None,
    tag: str = "train",
    devices: Sequence[Any] | None = None,
    process: tuple[int, int] | None = None,
    progress: bool = True,
    description: str = "train",
) -> xr.Dataset:
    """Train every cell of `grid` and record metrics at the steps `record_at`.

    **Arguments:**

    - `model`: an `eqx.Module` shared by every run, or a factory `make_model(key, hp) ->
      model` (a function or a `lazyrich.train.Factory`; traced under `jax.vmap`, `hp` maps
      axis names to the run's traced values). Trainable leaves are
      the inexact arrays outside `lazyrich.models.Frozen`.
    - `step`: an optax `GradientTransformation`, a function `hp -> GradientTransformation`
      (a swept learning rate: `lambda hp: optax.sgd(hp["eta"])`) or a `lazyrich.train.Step`.
    - `data`: a `Stream` (online) or a `lazyrich.data.Dataset` (finite).
    - `record_at`: increasing step counts (>= 0; 0 records the initial state, with
      `train_loss` NaN) at which metrics are recorded; the last one is the length of every run.
    - `grid`: the hyperparameter grid (default: one run with seed 0).
    - `batch`: batch size (online: required; finite: `None` for full-batch GD).
    - `loss`: `"mse"` (mean over batch × outputs, no ½), `"half_mse"` (half of it, the lazy
      theory's `1/(2 n k) Σ (f − y)²`) or `"ce"` (softmax cross-entropy).
    - `measures`: `name -> fn(snapshot)` returning an array or a dict of arrays, evaluated
      (vmapped, compiled) at every record; see `Snapshot`. Values after divergence are NaN.
    - `keep_initial`: keep the initial params in the state (`snapshot.params0`).
    - `evaluate_at`: the records (a subset of `record_at`) at which the train and test sets
      are evaluated (default: every record); at the others only `train_loss` and the
      measures are recorded and the set metrics are NaN (e.g. record every step, evaluate
      once per epoch).
    - `threshold`: a batch loss above this (or non-finite) marks the run diverged.
    - `eval_chunk`: examples per piece of the train/test evaluation (bounds memory).
    - `keep_params`: keep each run's final trainable params in the Dataset, one variable
      `params.<i>` per leaf (dimensions: the grid's, then the leaf's own); read them back as
      the model's pytree with `lazyrich.train.final_params(ds, model)`.
    - `chunk_size`: runs per compiled program (default: all). A chunk's runs are laid out
      in groups of one seed, each group of the same size, padded by repeating runs.
    - `x64`: float64 for `True`, float32 for `False`, the current setting for `None`, or a
      function of a run's hyperparameters (e.g. `lambda hp: hp["gamma"] < 1e-2`);
      chunks never mix precisions.
    - `store`, `tag`: save finished chunks in `store` (and load them on a resumed call);
      `tag` names this call's chunks (give each call of a study its own).
    - `devices`: devices to shard the run axis over (default: `default_devices()`).
    - `process`: `(index, count)` of a multi-process launch (default JAX's).
    - `progress`: a tqdm bar over steps × chunks.
    - `description`: the bar's label (default `"train"`).

    **Returns:** an `xarray.Dataset` with one dimension per grid axis and `step`:
    `train_loss` (mean batch loss over the steps since the previous record, NaN at step 0),
    `test_loss`, `test_accuracy`, for finite data `train_loss_full` and `train_accuracy`
    (on the whole training set), the measures, and `diverged`, `diverged_step` per run;
    attribute `step_seconds`: wall time spent in the training steps of the chunks this call
    computed (blocked on the result; it includes compilation on a first call of a structure,
    excludes initialisation and evaluation, and is 0 for chunks loaded from `store`) and
    `devices` (how many devices the run axis was sharded over); with `keep_params`, the final
    params (`final_params`). Always a Dataset: one return type, so the final params, like every
    other per-run result, travel with the grid's coordinates (`ds.sel(...)` selects them too).
    """
    grid = grid if grid is not None else Grid.product(seed=[0])
    record = np.asarray(record_at, dtype=np.int64)
    require(record.ndim == 1 and record.size >= 1, "record_at must be a non-empty list of steps")
    require(bool(np.all(np.diff(record) > 0)), "record_at must be increasing")
    online = isinstance(data, Stream)
    require(online or isinstance(data, Dataset), "data must be a Stream or a lazyrich Dataset")
    require(record[0] >= 0, "record_at must be steps >= 0")
    if online:
        require(batch is not None, "an online Stream needs a batch size: pass batch=")
    if batch is not None:
        require(isinstance(batch, int) and batch >= 1, f"batch must be an int >= 1, got {batch}")
    if not online:
        assert isinstance(data, Dataset)
        num_batches(data.n_train, batch or data.n_train)  # checks batch <= n_train
    require(threshold > 0, f"divergence threshold must be > 0, got {threshold}")
    require(eval_chunk >= 1, f"eval_chunk must be >= 1, got {eval_chunk}")
    get_loss(loss)
    full_at = set(record.tolist()) if evaluate_at is None else {int(r) for r in evaluate_at}
    require(
        full_at <= set(record.tolist()),
        "evaluate_at must be a subset of record_at: pass steps that are also recorded",
    )
    measures = dict(measures or {})
    for name in measures:
        require(name.isidentifier(), f"measure name {name!r} must be an identifier")

    runs = grid.runs()
    seeds = np.unique(grid.run_seeds())
    seed_index = np.searchsorted(seeds, grid.run_seeds())
    n = grid.num_runs
    if devices is None:
        devices = default_devices()
    devices = list(devices)
    sharding = run_sharding(devices)
    chunk_size = n if chunk_size is None else chunk_size
    require(chunk_size >= 1, f"chunk size must be >= 1, got {chunk_size}")
    chunk_size = -(-chunk_size // len(devices)) * len(devices)
    p_index, p_count = (
        process if process is not None else (jax.process_index(), jax.process_count())
    )
    require(p_count == 1 or store is not None, "a multi-process run needs a results store")
    if x64 is None:
        x64 = bool(jax.config.read("jax_enable_x64"))
    if callable(x64):
        precision = np.array(
            [bool(x64({k: v[i] for k, v in runs.items()})) for i in range(n)], dtype=bool
        )
    else:
        precision = np.full(n, bool(x64))
    bounds = _chunk_bounds(precision, chunk_size)
    hp_names = tuple(runs)
    make_model = model if is_factory(model) else None
    the_step = as_step(step)
    measure_items = tuple(sorted(measures.items()))
    mesh = None if sharding is None else sharding.mesh

    def make_spec(shared, run_data, seed_keys) -> Spec:
        return Spec(
            model=shared,
            data=run_data,
            seed_keys=seed_keys,
            step=the_step,
            make_model=make_model,
            loss=loss,
            batch=batch,
            measures=measure_items,
            threshold=float(threshold),
            eval_chunk=int(eval_chunk),
            keep_initial=keep_initial,
            mesh=mesh,
        )

    stamp = _fingerprint(
        tag, grid.names, [v.tolist() for v in grid.values], record.tolist(), batch, loss,
        sorted(measures), sorted(full_at), threshold, chunk_size, precision.tolist(),
        jax.tree.map(lambda a: (a.shape, str(a.dtype)), eqx.filter(data, eqx.is_array)),
    )  # fmt: skip

    step_seconds = [0.0]  # wall time inside the step programs (this call's chunks)

    layout = seed_layout(seed_index, bounds, len(devices))

    def compute(c: int, bar) -> dict[str, np.ndarray]:
        lo, hi = bounds[c]
        slots, first = layout.slots[c], layout.first[c]  # runs laid out in seed groups
        use64 = bool(precision[lo])
        with jax.enable_x64(use64):
            dtype = jnp.result_type(float)
            shared = None if is_factory(model) else model
            if shared is not None:
                shared = _cast_data(shared, dtype)
            spec = make_spec(
                shared,
                _cast_data(data, dtype),
                jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32)),
            )
            groups = jnp.asarray(layout.groups[c], jnp.int32)
            hp = {
                k: jnp.asarray(runs[k][slots], jnp.int32 if k == "seed" else dtype).reshape(
                    groups.size, layout.per_group
                )
                for k in hp_names
            }
            if sharding is not None:
                hp, groups = jax.device_put((hp, groups), sharding)
            state = init_program(spec, hp, groups)
            out: dict[str, dict[int, np.ndarray]] = {}
            t = 0
            for r in record:
                if r > t:
                    t0 = time.perf_counter()
                    state = step_program(spec, state, jnp.int32(t), jnp.int32(r - t))
                    jax.block_until_ready(state)
                    step_seconds[0] += time.perf_counter() - t0
                    bar.update(int(r - t))
                    t = int(r)
                values = evaluate_program(spec, state, jnp.int32(t), bool(r in full_at))
                for k, v in values.items():
                    v = np.asarray(v, np.float64)
                    if k.startswith("per_example:"):
                        # per-example values averaged here in float64: the result then does
                        # not depend on how XLA tiles a reduction for a given chunk size
                        k, v = k.removeprefix("per_example:"), v.mean(-1)
                    out.setdefault(k, {})[int(r)] = v
            names = ["test_loss", "test_accuracy"]
            if not online:
                names += ["train_loss_full", "train_accuracy"]
            for k in names:  # never evaluated (evaluate_at=[]): NaN throughout
                out.setdefault(k, {int(record[0]): np.full(slots.size, np.nan)})
            saved = {}
            for k, by_step in out.items():  # NaN where a record did not evaluate `k`
                like = np.full_like(next(iter(by_step.values())), np.nan)
                rows = [by_step.get(int(r), like) for r in record]
                saved[k] = np.stack(rows, 1)[first]
            per_run = lambda a: np.asarray(a).reshape((slots.size,) + a.shape[2:])[first]  # noqa: E731
            saved["diverged"] = per_run(state.diverged)
            saved["diverged_step"] = per_run(state.diverged_step).astype(np.int64)
            if keep_params:
                for i, leaf in enumerate(jax.tree.leaves(state.params)):
                    saved[f"param:{i}"] = per_run(leaf)
        return saved

    mine = [c for c in range(len(bounds)) if c % p_count == p_index]
    total = int(record[-1]) * len(mine)
    bar = tqdm(total=total, desc=description, unit="step", disable=not progress)
    results: dict[int, dict[str, np.ndarray]] = {}
    name = f"{tag}-{stamp}"
    for c in mine:
        size = bounds[c][1] - bounds[c][0]  # a chunk of another length is not this one
        saved = store.load_chunk(c, tag=name, rows=size) if store is not None else None
        if saved is None:
            saved = compute(c, bar)
            if store is not None:
                store.save_chunk(c, saved, tag=name)
        else:
            bar.update(int(record[-1]))
        results[c] = saved
    others = [c for c in range(len(bounds)) if c not in results]
    while others:  # chunks of other processes (multi-process runs only)
        assert store is not None
        for c in list(others):
            saved = store.load_chunk(c, tag=name, rows=bounds[c][1] - bounds[c][0])
            if saved is not None:
                results[c] = saved
                others.remove(c)
        if others:
            time.sleep(0.5)
    bar.close()
    merged = {k: np.concatenate([results[c][k] for c in range(len(bounds))]) for k in results[0]}
    # one convention: every record after a run's divergence is NaN
    after = merged["diverged"][:, None] & (record[None, :] > merged["diverged_step"][:, None])
    for k, v in merged.items():
        if k not in ("diverged", "diverged_step") and not k.startswith("param:"):
            merged[k] = np.where(after.reshape(after.shape + (1,) * (v.ndim - 2)), np.nan, v)
    ds = _to_dataset(grid, record, merged, data, batch)
    ds.attrs["step_seconds"] = step_seconds[0]
    ds.attrs["devices"] = len(devices)
    return ds


def _to_dataset(grid: Grid, record, merged, data, batch) -> xr.Dataset:
    shape = grid.shape
    dims = grid.names
    coords: dict[str, Any] = {"step": record}
    for name, v in zip(grid.names, grid.values, strict=True):
        if v.ndim == 1:
            coords[name] = v
        else:
            coords[f"{name}_value"] = ((grid.names[0], name), v)
    if isinstance(data, Dataset):
        coords["epoch"] = ("step", record / num_batches(data.n_train, batch or data.n_train))
    variables = {}
    for k, v in merged.items():
        v = v.reshape(shape + v.shape[1:])
        if k.startswith("param:"):  # a final param leaf: no step axis
            k = PARAMS_PREFIX + k.removeprefix("param:")
            variables[k] = (dims + tuple(f"{k}_{i}" for i in range(v.ndim - len(shape))), v)
            continue
        extra = tuple(f"{k}_{i}" for i in range(v.ndim - len(shape) - 1))
        vdims = dims if k in ("diverged", "diverged_step") else dims + ("step",) + extra
        variables[k] = (vdims, v)
    return xr.Dataset(variables, coords=coords)
