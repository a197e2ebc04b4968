"""The compiled programs of the engine: init, advance and evaluate a chunk of runs.

They are module-level `eqx.filter_jit` functions of a `Spec` (the static configuration and
the data, as one pytree) and the runs' state, so their compilation cache is keyed on
structure: a new `Spec` with equal static parts and arrays of the same shapes reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec
from jaxtyping import Array, PRNGKeyArray, PyTree

from ..data import Dataset, batch_indices
from ..models import Apply, partition
from ._losses import accuracy, get_loss
from ._seeds import seed_only
from ._steps import Step


class Stream(eqx.Module):
    """An online task: a fresh batch every step, and a fixed held-out set.

    **Fields:**

    - `sample`: `(key, n) -> (x, y)`, jittable; the engine draws the batch of step `t` of a
      run with seed `s` as `sample(fold_in(fold_in(key(s), 1), t), batch)`, shared by every
      run with that seed. It may be a bound method of an `eqx.Module` (its arrays are then
      inputs of the compiled program, not constants).
    - `x_test`, `y_test`: the held-out set for `test_loss` and `test_accuracy`.
    """

    sample: Callable[[PRNGKeyArray, int], tuple[Array, Array]]
    x_test: Array
    y_test: Array


class Snapshot(NamedTuple):
    """What a measure sees of one run at a record (all traced; one run, not the batch).

    **Fields:**

    - `params`: trainable params now; `params0`: at initialisation (`keep_initial=True`, else
      None).
    - `apply`: `apply(params, x)`, the run's model as a function of its params.
    - `hp`: the run's hyperparameters (`{"gamma": ..., "eta": ..., "seed": ...}`).
    - `data`: the `Stream` or `Dataset`.
    - `step`: the number of steps done.
    """

    params: PyTree
    params0: PyTree | None
    apply: Callable[[PyTree, Array], Array]
    hp: dict[str, Array]
    data: Any
    step: Array


class Factory(eqx.Module):
    """Base class for a model factory that is itself a Module: `__call__(key, hp) -> model`.

    The engine treats a plain function or a `Factory` as a factory and any other
    `eqx.Module` as one model shared by every run. A `Factory` compares equal to another
    with equal fields, so two engine calls with equal factories share compiled programs.
    """

    def __call__(self, key: PRNGKeyArray, hp: dict[str, Array]) -> Any:
        """**Arguments:**

        - `key`: the run's PRNG key for the model's initialisation, `fold_in(key(seed), 0)`.
        - `hp`: the run's hyperparameters (traced scalars: `gamma`, `seed`, ...).

        **Returns:** the run's model, an `eqx.Module`.
        """
        raise NotImplementedError


def is_factory(model: Any) -> bool:
    """Whether the engine builds each run's model with `model(key, hp)`."""
    return isinstance(model, Factory) or not isinstance(model, eqx.Module)


class Spec(eqx.Module):
    """Everything but the runs' state: static configuration and the (dynamic) data."""

    model: Any
    data: Any
    seed_keys: Array
    step: Step
    make_model: Any = eqx.field(static=True)
    loss: str = eqx.field(static=True)
    batch: int | None = eqx.field(static=True)
    measures: tuple = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    eval_chunk: int = eqx.field(static=True)
    keep_initial: bool = eqx.field(static=True)
    mesh: Any = eqx.field(static=True)


class State(eqx.Module):
    """The state of a chunk of runs, laid out in seed groups (`lazyrich.train._seeds`).

    Per-run leaves have leading axes `(groups, runs per group)`; `seed_rest` (the model's
    seed-only non-trainable leaves, `None` elsewhere) and `group_seed` (each group's index into
    `Spec.seed_keys`) a leading axis of groups. Runs are stored grouped, not reshaped in the
    loop: a reshape there made XLA copy the updated first-layer weights every step.
    """

    params: PyTree
    rest: PyTree
    seed_rest: PyTree
    opt_state: Any
    params0: PyTree
    hp: dict[str, Array]
    group_seed: Array
    diverged: Array
    diverged_step: Array
    loss_sum: Array
    count: Array


def _applier(rest: PyTree) -> Apply:
    """The run's `apply(params, x)`, a pytree with `.model(params)` (`lazyrich.models.Apply`)."""
    return Apply(rest)


def step_key(seed: int | PRNGKeyArray, t: int | Array) -> PRNGKeyArray:
    """The PRNG key the engine passes to a `Step` at global step `t` of a run with `seed`:
    `fold_in(fold_in(key(seed), 2), t)` (e.g. to replay PLWS's coins on the host).

    **Arguments:**

    - `seed`: the run's integer seed, or a typed key `jax.random.key(seed)` (used as is).
    - `t`: the global step, counting from 0 (traced or Python int).

    **Returns:** a typed PRNG key.
    """
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    return jax.random.fold_in(jax.random.fold_in(key, 2), t)


def _map_runs(fn: Callable, *args: Any, single: bool = False) -> Any:
    """`eqx.filter_vmap(fn)(*args)` over the leading axis (of groups, or of a group's runs);
    with `single` (a step whose `branches` is set) an axis of size one is not vmapped but
    sliced and re-stacked, so for a single run a `lax.cond` on a per-run value (PLWS's coin)
    stays a conditional that runs one branch instead of becoming a `select` that runs both."""
    n = jax.tree.leaves(eqx.filter(args, eqx.is_array))[0].shape[0]
    if n != 1 or not single:
        return eqx.filter_vmap(fn)(*args)
    out = fn(*jax.tree.map(lambda a: a[0] if eqx.is_array(a) else a, args))
    return jax.tree.map(lambda a: a[None] if eqx.is_array(a) else a, out)


def _sharded(spec: Spec, fn: Callable, run_args: tuple, rep_args: tuple = ()) -> Any:
    """`fn(spec, *run_args, *rep_args)`, with the run axis split over `spec.mesh` by
    `shard_map` (each device runs the unpartitioned program on its runs)."""
    if spec.mesh is None:
        return fn(spec, *run_args, *rep_args)
    dyn_spec, static_spec = eqx.partition(spec, eqx.is_array)
    dyn_runs, static_runs = eqx.partition(run_args, eqx.is_array)
    out_static = []

    def inner(ds, dr, rep):
        out = fn(eqx.combine(ds, static_spec), *eqx.combine(dr, static_runs), *rep)
        dyn, static = eqx.partition(out, eqx.is_array)
        out_static.append(static)
        return dyn

    runs, replicated = PartitionSpec("runs"), PartitionSpec()
    dyn = jax.shard_map(
        inner,
        mesh=spec.mesh,
        in_specs=(replicated, runs, replicated),
        out_specs=runs,
        check_vma=False,
    )(dyn_spec, dyn_runs, rep_args)
    return eqx.combine(dyn, out_static[0])


def _flat(tree: Any) -> Any:
    """`(G, K, ...)` leaves as `(G·K, ...)`."""
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]) if eqx.is_array(a) else a, tree)


def _init(spec: Spec, hp: dict[str, Array], group_seed: Array) -> State:
    keys = spec.seed_keys[group_seed]

    def one(hp_r, key):
        if spec.make_model is not None:
            model = spec.make_model(jax.random.fold_in(key, 0), hp_r)
        else:
            model = spec.model
        params, rest = partition(model)
        opt_state = spec.step.init(
            params, apply=_applier(rest), hp=hp_r, key=jax.random.fold_in(key, 3)
        )
        return params, (rest if spec.make_model is not None else None), opt_state

    in_group = lambda hp_g, key: eqx.filter_vmap(one, in_axes=(0, None))(hp_g, key)  # noqa: E731
    params, rest, opt_state = eqx.filter_vmap(in_group)(hp, keys)
    seed_rest = None
    if spec.make_model is not None:
        # leaves that depend on the seed alone (a centred net's frozen copy) are kept once
        # per group: the step closes over them, so what is computed from them is per group
        hp0 = jax.tree.map(lambda a: a[0, 0], hp)
        mask = seed_only(spec.make_model, jax.random.fold_in(keys[0], 0), hp0)
        seed_part, rest = eqx.partition(rest, mask)
        seed_rest = jax.tree.map(lambda a: a[:, 0] if eqx.is_array(a) else a, seed_part)
    like = jnp.zeros(next(iter(hp.values())).shape, jnp.result_type(float))
    return State(
        params=params,
        rest=rest,
        seed_rest=seed_rest,
        opt_state=opt_state,
        params0=params if spec.keep_initial else None,
        hp=hp,
        group_seed=group_seed,
        diverged=jnp.zeros(like.shape, bool),
        diverged_step=jnp.full(like.shape, -1, jnp.int32),
        loss_sum=like,
        count=jnp.zeros(like.shape, jnp.int32),
    )


@eqx.filter_jit
def init_program(spec: Spec, hp: dict[str, Array], group_seed: Array) -> State:
    """The initial state of a chunk of runs: `hp` of shape `(groups, runs per group)`,
    `group_seed` `(groups,)`."""
    return _sharded(spec, _init, (hp, group_seed))


def _rest(spec: Spec, rest: PyTree, seed_rest: PyTree) -> PyTree:
    """A run's non-trainable half: its own leaves with its group's seed-only ones."""
    if spec.make_model is None:
        return partition(spec.model)[1]
    return eqx.combine(rest, seed_rest)


def _batch(spec: Spec, key: PRNGKeyArray, t: Array) -> tuple[Array, Array]:
    """The batch of step `t` for the runs with seed key `key` (the whole set: full batch)."""
    data, batch = spec.data, spec.batch
    if isinstance(data, Stream):
        assert batch is not None  # checked by `train`
        return data.sample(jax.random.fold_in(jax.random.fold_in(key, 1), t), batch)
    assert isinstance(data, Dataset)
    if batch is None:
        return data.x_train, data.y_train
    idx = batch_indices(jax.random.fold_in(key, 1), data.x_train.shape[0], batch, t)
    return data.x_train[idx], data.y_train[idx]


def _advance(spec: Spec, state: State, start: Array, num: Array) -> State:
    loss_fn = get_loss(spec.loss)
    single = type(spec.step).branches

    def run_step(t, s: State) -> State:
        runs = (s.params, s.rest, s.opt_state, s.hp, s.diverged, s.diverged_step)

        def group(key, seed_rest, runs_g):
            # what depends on the group's seed alone (its batch, its seed-only leaves and
            # what is computed from them: the frozen copy's outputs) is closed over by the
            # per-run function below, so JAX computes it once per group, not once per run;
            # a product of the shared batch with per-run weights is one product over the runs
            x, y = _batch(spec, key, t)
            skey = step_key(key, t)

            def one(params, rest, opt_state, hp_r, diverged, dstep):
                # a step's own arrays (e.g. P-BFGS's P) are shared by the runs, not copied per
                # run per step (a copy of a 143,872 × 40 P each step would cost more than the
                # step): XLA may then batch their products differently for another number of
                # runs per chunk, so such steps agree across chunk sizes to rounding, not bit
                # for bit
                new_p, new_o, value = spec.step.update(
                    params,
                    opt_state,
                    (x, y),
                    apply=_applier(_rest(spec, rest, seed_rest)),
                    hp=hp_r,
                    key=skey,
                    loss=loss_fn,
                )
                bad = jnp.logical_not(jnp.isfinite(value)) | (value > spec.threshold)
                now = diverged | bad
                keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(now, b, a), new, old)
                dstep = jnp.where(bad & ~diverged, t, dstep)
                return keep(new_p, params), keep(new_o, opt_state), now, dstep, value

            return _map_runs(one, *runs_g, single=single)

        keys = spec.seed_keys[s.group_seed]
        params, opt_state, diverged, dstep, value = _map_runs(
            group, keys, s.seed_rest, runs, single=single
        )
        return eqx.tree_at(
            lambda s: (s.params, s.opt_state, s.diverged, s.diverged_step, s.loss_sum, s.count),
            s,
            (params, opt_state, diverged, dstep, s.loss_sum + value.astype(s.loss_sum.dtype),
             s.count + 1),
            is_leaf=lambda x: x is None,
        )  # fmt: skip

    state = eqx.tree_at(
        lambda s: (s.loss_sum, s.count),
        state,
        (jnp.zeros_like(state.loss_sum), jnp.zeros_like(state.count)),
    )
    # only arrays go through the loop: the non-array fields of a run's model (an activation
    # function, a lambda of a user's Equinox module, in `state.rest`) stay static
    dynamic, static = eqx.partition(state, eqx.is_array)
    step_arrays = lambda t, d: eqx.filter(run_step(t, eqx.combine(d, static)), eqx.is_array)  # noqa: E731
    return eqx.combine(jax.lax.fori_loop(start, start + num, step_arrays, dynamic), static)


@eqx.filter_jit(donate="all-except-first")
def step_program(spec: Spec, state: State, start: Array, num: Array) -> State:
    """`num` steps of every run from global step `start`."""
    return _sharded(spec, _advance, (state,), (start, num))


def _per_example(spec: Spec, apply, params, x: Array, y: Array) -> tuple[Array, Array]:
    """Per-example loss and accuracy of one run, evaluated in pieces of `eval_chunk`."""
    loss_fn = get_loss(spec.loss)
    rows = jax.vmap(lambda p, t: (loss_fn(p[None], t[None]), accuracy(p[None], t[None])))
    n, chunk = x.shape[0], spec.eval_chunk
    if n <= chunk:
        return rows(apply(params, x), y)
    pad = (-n) % chunk
    xp = jnp.concatenate([x, x[:pad]]).reshape((-1, chunk) + x.shape[1:])
    yp = jnp.concatenate([y, y[:pad]]).reshape((-1, chunk) + y.shape[1:])
    lv, av = jax.lax.map(lambda xy: rows(apply(params, xy[0]), xy[1]), (xp, yp))
    return lv.reshape(-1)[:n], av.reshape(-1)[:n]


def _per_run(y: Array, zero: Array) -> Array:
    """The run's own copy of the targets `y` (`zero`: a per-run 0 XLA cannot fold).

    With the targets shared by every run, XLA:CPU (jax 0.10.2) computed the softmax
    cross-entropy of runs 64 onwards of one vmapped evaluation from the logits of runs 0, 1, …
    (a per-example loss of shared integer labels under the run vmap; the losses of fewer than
    65 runs and the squared losses were right). A per-run copy avoids the bad fusion
    (`tests/test_engine_eval.py` checks > 64 runs against each run evaluated alone).
    """
    safe = jnp.where(jnp.isfinite(zero), zero, 0)  # NaN for a diverged run: keep y intact
    return y + safe.astype(y.dtype)


def _evaluate(spec: Spec, state: State, step: Array, full: bool) -> dict[str, Array]:
    data = spec.data

    def one(params, rest, seed_rest, params0, hp_r, loss_sum, count):
        apply = _applier(_rest(spec, rest, seed_rest))
        # `+ 0·loss_sum` gives every run its own copy of the inputs (XLA does not fold a float
        # multiply by zero), so the matmuls stay per-run batched as in training and results
        # do not depend on how many runs share a device
        zero = 0 * loss_sum
        out = {"train_loss": jnp.where(count > 0, loss_sum / jnp.maximum(count, 1), jnp.nan)}
        if full:
            tl, ta = _per_example(
                spec,
                apply,
                params,
                data.x_test + zero.astype(data.x_test.dtype),
                _per_run(data.y_test, zero),
            )
            out["per_example:test_loss"], out["per_example:test_accuracy"] = tl, ta
        if full and isinstance(data, Dataset):
            x = data.x_train + zero.astype(data.x_train.dtype)
            fl, fa = _per_example(spec, apply, params, x, _per_run(data.y_train, zero))
            out["per_example:train_loss_full"], out["per_example:train_accuracy"] = fl, fa
        snap = Snapshot(params, params0, apply, hp_r, data, step)
        for name, fn in spec.measures:
            value = fn(snap)
            if isinstance(value, dict):
                out.update({f"{name}_{k}": jnp.asarray(v) for k, v in value.items()})
            else:
                out[name] = jnp.asarray(value)
        return out

    # evaluation stays per run (each run its own copy of its group's seed-only leaves), over
    # the runs flattened in group-major order
    k = state.diverged.shape[1]
    seed_rest = jax.tree.map(
        lambda a: jnp.repeat(a, k, axis=0) if eqx.is_array(a) else a, state.seed_rest
    )
    runs = _flat((state.params, state.rest, state.params0, state.hp, state.loss_sum, state.count))
    params, rest, params0, hp, loss_sum, count = runs
    return eqx.filter_vmap(one)(params, rest, seed_rest, params0, hp, loss_sum, count)


@eqx.filter_jit
def evaluate_program(spec: Spec, state: State, step: Array, full: bool) -> dict[str, Array]:
    """Metrics and measures of every run (per-example values under `per_example:` keys);
    without `full`, only the window train loss and the measures."""
    return _sharded(spec, lambda sp, st, t: _evaluate(sp, st, t, full), (state,), (step,))
