"""Vmapped sweeps: many runs of online SGD in one compiled program.

A sweep is a grid of runs (γ × η × seed, flattened γ-major). Runs are processed in
equal-sized chunks; inside a chunk every run is one slice of a `jax.vmap`, and steps run in a
`lax.fori_loop` whose trip count is an array, so one compiled program serves every chunk and
every recording interval. γ, η and the seed are array inputs, never static.

Per step, each seed's online batch is drawn once (`sample(fold_in(key_seed, t), batch)`) and
shared by every run with that seed, so runs that differ only in γ or η see identical data.

Divergence: when a run's batch loss is non-finite or above `threshold`, the run is frozen
(its parameters stop changing) and marked `diverged` with the step it happened; the other
runs in the program are unaffected.

Finished chunks can be saved through a `StudyDir`; a resumed sweep loads them instead of
recomputing. Chunks are computed independently and deterministically, so an interrupted and
resumed sweep gives bit-identical results to an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec
from tqdm.auto import tqdm

from ..errors import require
from ..models import partition
from ..results import StudyDir
from ._distributed import default_devices, run_sharding
from ._losses import accuracy, get_loss

ModelFn = Callable[[jax.Array, jax.Array], Any]  # (key, gamma) -> model
METRICS = ("train_loss", "test_loss", "test_accuracy")
SampleFn = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]  # (key, n) -> (x, y)


@dataclass(frozen=True)
class Grid:
    """A flattened γ × η × seed grid (γ-major, then η, then seed).

    `etas` is either one η list shared by every γ, shape `(n_eta,)`, or a per-γ list,
    shape `(n_gamma, n_eta)` (e.g. a window of η below each γ's divergence boundary).
    """

    gammas: np.ndarray
    etas: np.ndarray
    seeds: np.ndarray

    @staticmethod
    def of(
        gammas: Sequence[float], etas: Sequence[float] | np.ndarray, seeds: Sequence[int]
    ) -> Grid:
        g, e, s = (np.asarray(v, dtype=float) for v in (gammas, etas, seeds))
        for name, v in (("gamma", g), ("eta", e)):
            require(v.size >= 1, f"the {name} grid is empty: give at least one value")
            require(bool(np.all(np.isfinite(v))), f"{name} values must be finite, got {v.tolist()}")
            require(bool(np.all(v > 0)), f"{name} values must be > 0, got {v.tolist()}")
        require(g.ndim == 1, "gamma values must be a 1-D list")
        require(
            e.ndim == 1 or (e.ndim == 2 and e.shape[0] == g.size),
            f"eta must be a list or a (n_gamma, n_eta) array, got shape {e.shape}",
        )
        require(s.size >= 1, "the seed list is empty: give at least one seed")
        return Grid(g.astype(np.float64), e.astype(np.float64), s.astype(np.int64))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.gammas.size, self.etas.shape[-1], self.seeds.size)

    @property
    def num_runs(self) -> int:
        return math.prod(self.shape)

    def eta_table(self) -> np.ndarray:
        """η per (γ, η-index), shape `(n_gamma, n_eta)`."""
        return np.broadcast_to(self.etas, (self.gammas.size, self.etas.shape[-1]))

    def runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-run γ, η and seed index, flattened γ-major."""
        gi, ei, si = np.meshgrid(*(np.arange(n) for n in self.shape), indexing="ij")
        return self.gammas[gi.ravel()], self.eta_table()[gi.ravel(), ei.ravel()], si.ravel()


@dataclass(frozen=True)
class OnlineSetup:
    """Everything that defines one run except γ, η and the seed.

    **Arguments:**

    - `make_model`: `(key, gamma) -> model`; traced under `jax.vmap`, so it must build the
      model from array γ (e.g. `lambda k, g: scaled(MLP(..., key=k), gamma=g)`).
    - `sample`: `(key, n) -> (x, y)`, the online stream (a fresh batch per step).
    - `test_x`, `test_y`: held-out set for test loss and accuracy.
    - `batch`: batch size. `loss`: `mse` or `xent`.
    - `lr_multiplier`: the learning rate is `eta * lr_multiplier` (μP: the width N).
    - `direction`: an optax transformation applied to the gradient before scaling by the
      learning rate (default: identity, i.e. plain SGD; `optax.trace(0.9)` for momentum).
    - `threshold`: a batch loss above this (or non-finite) marks the run diverged.
    """

    make_model: ModelFn
    sample: SampleFn
    test_x: jax.Array
    test_y: jax.Array
    batch: int
    loss: str = "mse"
    lr_multiplier: float = 1.0
    direction: optax.GradientTransformation = field(default_factory=optax.identity)
    threshold: float = 1e6

    def __post_init__(self):
        require(self.batch >= 1, f"batch size must be >= 1, got {self.batch}")
        require(self.threshold > 0, f"divergence threshold must be > 0, got {self.threshold}")
        get_loss(self.loss)


class _State(eqx.Module):
    params: Any
    rest: Any
    opt_state: Any
    eta: jax.Array
    seed_index: jax.Array
    diverged: jax.Array
    diverged_step: jax.Array
    loss_sum: jax.Array
    count: jax.Array


class _Program:
    """The compiled pieces of a sweep for one setup and dtype: init, advance, evaluate."""

    def __init__(self, setup: OnlineSetup, seed_keys: jax.Array, sharding=None):
        self.setup = setup
        loss_fn = get_loss(setup.loss)
        lr_mult = setup.lr_multiplier
        seed_keys_data = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys)
        seed_keys_init = jax.vmap(lambda k: jax.random.fold_in(k, 0))(seed_keys)

        def init(gamma, eta, seed_index):
            def one(g, e, si):
                model = setup.make_model(seed_keys_init[si], g)
                params, rest = partition(model)
                opt_state = setup.direction.init(params)
                return params, rest, opt_state

            params, rest, opt_state = eqx.filter_vmap(one)(gamma, eta, seed_index)
            zeros = jnp.zeros_like(eta)
            return _State(
                params=params,
                rest=rest,
                opt_state=opt_state,
                eta=eta,
                seed_index=seed_index,
                diverged=jnp.zeros(eta.shape, bool),
                diverged_step=jnp.full(eta.shape, -1, jnp.int32),
                loss_sum=zeros,
                count=jnp.zeros(eta.shape, jnp.int32),
            )

        def run_step(state: _State, t):
            keys = jax.vmap(jax.random.fold_in, (0, None))(seed_keys_data, t)
            xs, ys = jax.vmap(setup.sample, (0, None))(keys, setup.batch)

            def one(params, rest, opt_state, eta, si, diverged, dstep):
                x, y = xs[si], ys[si]
                loss, grads = jax.value_and_grad(lambda p: loss_fn(eqx.combine(p, rest)(x), y))(
                    params
                )
                direction, new_opt = setup.direction.update(grads, opt_state, params)
                step = (-eta * lr_mult).astype(loss.dtype)
                new_params = jax.tree.map(lambda p, d: p + step * d, params, direction)
                bad = jnp.logical_not(jnp.isfinite(loss)) | (loss > setup.threshold)
                now = diverged | bad
                keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(now, b, a), new, old)
                dstep = jnp.where(bad & ~diverged, t, dstep)
                return keep(new_params, params), keep(new_opt, opt_state), now, dstep, loss

            params, opt_state, diverged, dstep, loss = jax.vmap(one)(
                state.params,
                state.rest,
                state.opt_state,
                state.eta,
                state.seed_index,
                state.diverged,
                state.diverged_step,
            )
            return eqx.tree_at(
                lambda s: (s.params, s.opt_state, s.diverged, s.diverged_step, s.loss_sum, s.count),
                state,
                (params, opt_state, diverged, dstep, state.loss_sum + loss, state.count + 1),
            )

        def advance(state: _State, start, num):
            state = eqx.tree_at(
                lambda s: (s.loss_sum, s.count),
                state,
                (jnp.zeros_like(state.loss_sum), jnp.zeros_like(state.count)),
            )
            return jax.lax.fori_loop(start, start + num, lambda t, s: run_step(s, t), state)

        def evaluate(state: _State):
            # Per-example values, averaged on the host in float64: the result then does not
            # depend on how XLA tiles the reduction for a given number of runs per device.
            per_example = jax.vmap(
                lambda p, y: (loss_fn(p[None], y[None]), accuracy(p[None], y[None]))
            )

            def one(params, rest, eta):
                # `+ 0·η` gives every run its own copy of the inputs (XLA does not fold a float
                # multiply by zero): the matmuls stay per-run batched, as in the training step,
                # so results do not depend on how many runs share a device.
                x = setup.test_x + (0 * eta).astype(setup.test_x.dtype)
                return per_example(eqx.combine(params, rest)(x), setup.test_y)

            test_loss, test_acc = jax.vmap(one)(state.params, state.rest, state.eta)
            train_loss = state.loss_sum / jnp.maximum(state.count, 1)
            return train_loss, test_loss, test_acc

        if sharding is not None:
            # Each device runs the unpartitioned program on its own runs (shard_map, not
            # automatic partitioning), so results are bit-identical to a single device.
            runs, rep = sharding.spec, PartitionSpec()
            mapped = lambda f, ins: jax.shard_map(
                f, mesh=sharding.mesh, in_specs=ins, out_specs=runs, check_vma=False
            )
            init = mapped(init, (runs, runs, runs))
            advance = mapped(advance, (runs, rep, rep))
            evaluate = mapped(evaluate, runs)
        self.init = jax.jit(init)
        self.advance = jax.jit(advance, donate_argnums=0)
        self.evaluate = jax.jit(evaluate)


_PROGRAMS: dict[tuple, _Program] = {}


def _program(setup: OnlineSetup, seeds: np.ndarray, seed_keys, sharding, use64: bool) -> _Program:
    """The compiled program for `setup`, reused across `run_sweep` calls with the same setup
    object, seeds, sharding and precision (e.g. a probe sweep and the main sweep)."""
    key = (id(setup), tuple(seeds.tolist()), sharding, use64)
    prog = _PROGRAMS.get(key)
    if prog is None or prog.setup is not setup:
        if len(_PROGRAMS) > 16:
            _PROGRAMS.clear()
        prog = _PROGRAMS[key] = _Program(setup, seed_keys, sharding)
    return prog


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


def run_sweep(
    setup: OnlineSetup,
    grid: Grid,
    record_at: Sequence[int],
    *,
    chunk_size: int | None = None,
    x64: bool | Callable[[np.ndarray], bool] | None = None,
    store: StudyDir | None = None,
    progress: bool = True,
    description: str = "sweep",
    devices: Sequence[jax.Device] | None = None,
    process: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Run every cell of `grid` with online SGD and record metrics at `record_at` steps.

    **Arguments:**

    - `setup`: the task, model and optimizer (see `OnlineSetup`).
    - `grid`: the γ × η × seed grid.
    - `record_at`: increasing step counts (>= 1) at which metrics are recorded; the last one
      is the length of every run.
    - `chunk_size`: runs per compiled program (default: all runs in one chunk). The last
      chunk is padded to this size so every chunk reuses the same compiled program.
    - `x64`: run in float64: `None` (the current `jax_enable_x64` setting), `True`, `False`,
      or a function of γ values (e.g. `lambda g: g.min() < 1e-2`, the γ paper's rule),
      applied per run; chunks never mix precisions.
    - `store`: if given, each finished chunk is saved there and loaded instead of recomputed.
    - `progress`: show a tqdm bar over chunks with an ETA.
    - `devices`: devices to shard each chunk's run axis over (default
      `distributed.default_devices()`); the chunk size is rounded up to a multiple of their
      number. Results do not depend on the devices.
    - `process`: `(index, count)` of a multi-process launch (default: JAX's). Process `p`
      computes chunks `c % count == p` and saves them to `store` (a shared directory); then
      every process loads the others' chunks and returns the same merged results.

    **Returns:** a dict of NumPy arrays shaped like the grid: `train_loss`, `test_loss`,
    `test_accuracy` of shape (γ, η, seed, step), `diverged` and `diverged_step` of shape
    (γ, η, seed), and `step` (the recording steps).
    """
    record = np.asarray(record_at, dtype=np.int64)
    require(record.ndim == 1 and record.size >= 1, "record_at must be a non-empty list of steps")
    require(
        bool(np.all(np.diff(record) > 0)) and record[0] >= 1, "record_at must increase from >= 1"
    )
    runs_g, runs_e, runs_s = grid.runs()
    n = grid.num_runs
    devices = list(devices) if devices is not None else default_devices()
    sharding = run_sharding(devices)
    chunk_size = n if chunk_size is None else chunk_size
    require(chunk_size >= 1, f"chunk size must be >= 1, got {chunk_size}")
    chunk_size = -(-chunk_size // len(devices)) * len(devices)
    p_index, p_count = (
        process if process is not None else (jax.process_index(), jax.process_count())
    )
    require(p_count == 1 or store is not None, "a multi-process sweep needs a results store")
    if x64 is None:
        x64 = bool(jax.config.jax_enable_x64)
    precision = np.array(
        [x64(np.array([g])) if callable(x64) else bool(x64) for g in runs_g], dtype=bool
    )
    bounds = _chunk_bounds(precision, chunk_size)
    seed_keys = jax.vmap(jax.random.key)(jnp.asarray(grid.seeds))
    out = {name: np.full((n, record.size), np.nan) for name in METRICS}
    out["diverged"] = np.zeros(n, bool)
    out["diverged_step"] = np.full(n, -1, np.int64)

    def compute(lo: int, hi: int) -> dict[str, np.ndarray]:
        idx = lo + np.arange(chunk_size) % (hi - lo)  # pad by repeating the chunk's runs
        use64 = bool(precision[lo])
        with jax.enable_x64(use64):
            prog = _program(setup, grid.seeds, seed_keys, sharding, use64)
            dtype = jnp.result_type(float)
            inputs = (
                jnp.asarray(runs_g[idx], dtype),
                jnp.asarray(runs_e[idx], dtype),
                jnp.asarray(runs_s[idx], jnp.int32),
            )
            if sharding is not None:
                inputs = jax.device_put(inputs, sharding)
            state = prog.init(*inputs)
            metrics = {k: np.full((chunk_size, record.size), np.nan) for k in METRICS}
            t = 0
            for j, r in enumerate(record):
                state = prog.advance(state, jnp.int32(t), jnp.int32(r - t))
                t = int(r)
                values = prog.evaluate(state)
                for k, v in zip(METRICS, values, strict=True):
                    v = np.asarray(v, np.float64)
                    metrics[k][:, j] = v.mean(-1) if v.ndim == 2 else v
            saved = {k: v[: hi - lo] for k, v in metrics.items()}
            saved["diverged"] = np.asarray(state.diverged)[: hi - lo]
            saved["diverged_step"] = np.asarray(state.diverged_step, np.int64)[: hi - lo]
        return saved

    mine = [c for c in range(len(bounds)) if c % p_count == p_index]
    bar = tqdm(total=len(bounds), desc=description, unit="chunk", disable=not progress)
    results: dict[int, dict[str, np.ndarray]] = {}
    for c in mine:
        saved = store.load_chunk(c) if store is not None else None
        if saved is None:
            saved = compute(*bounds[c])
            if store is not None:
                store.save_chunk(c, saved)
        results[c] = saved
        bar.update(1)
    others = [c for c in range(len(bounds)) if c not in results]
    while others:  # chunks of other processes (multi-process runs only)
        assert store is not None
        for c in list(others):
            saved = store.load_chunk(c)
            if saved is not None:
                results[c] = saved
                others.remove(c)
                bar.update(1)
        if others:
            time.sleep(0.5)
    bar.close()
    for c, (lo, hi) in enumerate(bounds):
        for k, v in results[c].items():
            out[k][lo:hi] = v
    shape = grid.shape
    result = {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}
    result["step"] = record
    return result
