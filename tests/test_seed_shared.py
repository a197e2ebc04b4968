"""Work done once per seed, not once per run (`lazyrich.train._seeds`).

Oracle: the previous engine's results, written here as a plain `vmap` over runs in which every
run builds its own model (frozen copy included) and draws its own batch from its seed, so
nothing is shared. The engine, which groups runs by seed and computes the batch, the frozen
copy's outputs and the first layer's product once per seed, must equal it in float64 (≤ 1e-12)
for a centred μP MLP (`train` on a `Stream`, SGD at η·N), a CNN (epochs over a dataset, uneven
chunks padded) and an `eqx.nn.MLP` (sharded over two devices). A structural check counts the
matmul FLOPs of one engine step: the frozen copy's forward pass appears once per seed, and every
product with the shared batch is one product over the seed's runs.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.data import Dataset, batch_indices
from lazyrich.models import CNN, MLP, Frozen, functional, scaled
from lazyrich.train import Factory, Grid, Stream, final_params, mse, train
from lazyrich.train._programs import Spec, _advance, init_program
from lazyrich.train._seeds import seed_layout, seed_only
from lazyrich.train._steps import OptaxStep

D, N, B = 5, 12, 8


def sample(key, n):
    x = jax.random.normal(key, (n, D))
    return x, jnp.tanh(x[:, :2].sum(-1, keepdims=True))


def _mup(key, gamma):
    return scaled(MLP(D, N, 2, 1, key=key), gamma=gamma)


class _Mup(Factory):
    """The run's centred μP MLP at its γ."""

    def __call__(self, key, hp):
        return _mup(key, hp["gamma"])


def _mup_step(hp):
    """SGD at η·N as the engine takes it: θ ← θ − η·N·direction(∇L), direction the identity."""
    return optax.chain(optax.identity(), optax.scale(-hp["eta"] * N))


def _reference(make, opt_of, batch_of, test, grid, steps):
    """The previous engine: a vmap over runs, each with its own model and batches."""
    runs = grid.runs()
    seeds = jnp.asarray(grid.run_seeds(), jnp.uint32)
    hps = {k: jnp.asarray(v) for k, v in runs.items() if k != "seed"}

    def one(seed, hp):
        key = jax.random.key(seed)
        params, apply = functional(make(jax.random.fold_in(key, 0), hp))
        opt = opt_of(hp)

        def body(carry, t):
            p, s = carry
            x, y = batch_of(key, t)
            value, g = jax.value_and_grad(lambda q: mse(apply(q, x), y))(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), value

        (p, _), losses = jax.lax.scan(body, (params, opt.init(params)), jnp.arange(steps))
        return p, losses, jnp.mean((apply(p, test[0]) - test[1]) ** 2)

    return jax.jit(jax.vmap(one))(seeds, hps)


def _check(test_loss, train_loss, ref, record, params=None):
    """The engine's records (grid × step arrays) and params against the reference's."""
    p_ref, losses, test = ref
    shape = test_loss.shape[:-1]
    np.testing.assert_allclose(test_loss[..., -1], np.reshape(test, shape), rtol=1e-12)
    edges = [0, *record]
    for i in range(len(record)):
        window = np.asarray(losses)[:, edges[i] : edges[i + 1]].mean(1).reshape(shape)
        np.testing.assert_allclose(train_loss[..., i], window, rtol=1e-12)
    if params is not None:
        for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(p_ref), strict=True):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-13)


def test_centred_mup_mlp_sweep_equals_per_run_engine(x64):
    grid = Grid.of([0.5, 2.0], [0.02, 0.05], [0, 3, 5])  # 4 runs per seed
    test = sample(jax.random.key(99), 32)
    res = train(_Mup(), _mup_step, Stream(sample, *test), grid=grid, record_at=[3, 7], batch=B,
                progress=False)  # fmt: skip
    ref = _reference(
        lambda k, hp: _mup(k, hp["gamma"]),
        lambda hp: optax.sgd(hp["eta"] * N),
        lambda key, t: sample(jax.random.fold_in(jax.random.fold_in(key, 1), t), B),
        test, grid, 7,
    )  # fmt: skip
    _check(res.test_loss.values, res.train_loss.values, ref, [3, 7])
    assert not res["diverged"].any()


def test_cnn_epochs_with_uneven_chunks_equal_per_run_engine(x64):
    k = jax.random.split(jax.random.key(4), 2)
    x = jax.random.normal(k[0], (30, 8, 1))
    y = jnp.sin(x[:, :2, 0])
    data = Dataset(x[:24], y[:24], x[24:], y[24:], name="toy", num_classes=0)
    make = lambda key, hp: scaled(CNN((8, 1), 2, 2, key=key), gamma=hp["gamma"])  # noqa: E731
    opt_of = lambda hp: optax.sgd(hp["eta"])  # noqa: E731
    grid = Grid.product(gamma=[0.5, 2.0], eta=[0.02, 0.05], seed=[0, 1])
    # chunks of 5 and 3 runs: 3 + 2 and 2 + 1 runs of the two seeds, groups padded
    ds = train(
        make, opt_of, data, grid=grid, record_at=[2, 6], batch=6, chunk_size=5,
        keep_params=True, progress=False,
    )  # fmt: skip
    params = final_params(ds, make)

    def batch_of(key, t):
        idx = batch_indices(jax.random.fold_in(key, 1), 24, 6, t)
        return data.x_train[idx], data.y_train[idx]

    ref = _reference(make, opt_of, batch_of, (data.x_test, data.y_test), grid, 6)
    _check(ds.test_loss.values, ds.train_loss.values, ref, [2, 6], params)


def test_eqx_mlp_sharded_equals_per_run_engine(x64):
    make = lambda key, hp: scaled(eqx.nn.MLP(D, 1, 8, 2, key=key), gamma=hp["gamma"])  # noqa: E731
    opt_of = lambda hp: optax.sgd(hp["eta"])  # noqa: E731
    grid = Grid.product(gamma=[0.5, 2.0], eta=[0.1, 0.3], seed=[1, 2, 7])
    test = sample(jax.random.key(98), 16)
    ds = train(
        make, opt_of, Stream(sample, *test), grid=grid, record_at=[2, 5], batch=B,
        devices=jax.devices()[:2], keep_params=True, progress=False,
    )  # fmt: skip
    params = final_params(ds, make)
    ref = _reference(
        make, opt_of,
        lambda key, t: sample(jax.random.fold_in(jax.random.fold_in(key, 1), t), B),
        test, grid, 5,
    )  # fmt: skip
    _check(ds.test_loss.values, ds.train_loss.values, ref, [2, 5], params)


def _gamma_in_frozen(key, hp):
    """A centred MLP whose frozen copy is scaled by γ: frozen, yet not seed-only."""
    model = _mup(key, hp["gamma"])
    assert model.init_net is not None
    init = jax.tree.map(lambda w: w * (1 + hp["gamma"]), model.init_net.value)
    return eqx.tree_at(lambda m: m.init_net, model, Frozen(init))


def test_seed_only_is_read_from_the_factory_not_from_frozen(x64):
    hp = {"gamma": jnp.asarray(1.0), "eta": jnp.asarray(0.1), "seed": jnp.asarray(0)}
    key = jax.random.key(0)
    centred = seed_only(lambda k, h: _mup(k, h["gamma"]), key, hp)
    assert all(jax.tree.leaves(centred.init_net)) and not centred.gamma.value
    # the initial weights too (the engine asks only of non-trainable leaves: params train)
    assert all(jax.tree.leaves(centred.net))
    scaled_copy = seed_only(_gamma_in_frozen, key, hp)
    assert not any(jax.tree.leaves(scaled_copy.init_net)) and not scaled_copy.gamma.value
    # a leaf drawn from hp["seed"] is seed-only; one drawn from hp["eta"] is not
    drawn = seed_only(
        lambda k, h: (
            Frozen(jax.random.normal(jax.random.key(h["seed"]), (2,))),
            Frozen(jax.random.normal(jax.random.fold_in(k, h["eta"].astype(int)), (2,))),
        ),
        key,
        hp,
    )
    assert drawn[0].value and not drawn[1].value
    # and the engine trains such a model as the per-run engine does
    grid = Grid.product(gamma=[0.5, 2.0], seed=[0, 1])
    test = sample(jax.random.key(97), 16)
    ds = train(
        _gamma_in_frozen, optax.sgd(0.3), Stream(sample, *test), grid=grid, record_at=[4],
        batch=B, progress=False,
    )  # fmt: skip
    ref = _reference(
        _gamma_in_frozen, lambda hp: optax.sgd(0.3),
        lambda key, t: sample(jax.random.fold_in(jax.random.fold_in(key, 1), t), B),
        test, grid, 4,
    )  # fmt: skip
    _check(ds.test_loss.values, ds.train_loss.values, ref, [4])


def test_seed_layout_groups_pads_and_shards():
    seed_index = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    lay = seed_layout(seed_index, [(0, 5), (5, 8)], devices=1)
    assert lay.per_group == 3
    for (lo, hi), groups, slots, first in zip(
        [(0, 5), (5, 8)], lay.groups, lay.slots, lay.first, strict=True
    ):
        assert slots.size == groups.size * 3
        # every slot of a group holds a run of the group's seed, every run has its slot
        assert (seed_index[slots].reshape(-1, 3) == groups[:, None]).all()
        assert (slots[first] == np.arange(lo, hi)).all()
    one_seed = seed_layout(np.zeros(8, int), [(0, 8)], devices=4)
    assert (one_seed.per_group, one_seed.groups[0].size) == (2, 4)


def _dot_flops(jaxpr, found):
    """Sum of 2·(output size)·(contracted size) over the dot_generals of a jaxpr (sub-jaxprs
    once each: one step of the loop); records each dot's operand shapes in `found`."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lc, _), (lb, _) = eqn.params["dimension_numbers"]
            lhs, rhs = (v.aval.shape for v in eqn.invars)
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[c] for c in lc)
            found.append((lhs, rhs, len(lb)))
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _dot_flops(inner, found)
    return total


def test_one_engine_step_does_the_centring_forward_once_per_seed():
    seeds, k = [0, 3, 5], 4
    grid = Grid.of([0.5, 1.0], [0.01, 0.02], seeds)
    lay = seed_layout(np.searchsorted(seeds, grid.run_seeds()), [(0, grid.num_runs)])
    assert (lay.per_group, lay.groups[0].size) == (k, len(seeds))
    spec = Spec(
        model=None, data=Stream(sample, *sample(jax.random.key(1), 4)),
        seed_keys=jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32)),
        step=OptaxStep(_mup_step), make_model=_Mup(),
        loss="mse", batch=B, measures=(), threshold=1e6, eval_chunk=64, keep_initial=False,
        mesh=None,
    )  # fmt: skip
    runs = grid.runs()
    hp = {
        n: jnp.asarray(v[lay.slots[0]], jnp.int32 if n == "seed" else float).reshape(-1, k)
        for n, v in runs.items()
    }
    groups = jnp.asarray(lay.groups[0], jnp.int32)
    state = eqx.filter_eval_shape(init_program, spec, hp, groups)
    step = lambda st: eqx.filter(_advance(spec, st, jnp.int32(0), jnp.int32(1)), eqx.is_array)  # noqa: E731
    found = []
    flops = _dot_flops(jax.make_jaxpr(step)(state).jaxpr, found)
    macs = D * N + N * N + N  # Σ fan_in·fan_out of D → N → N → 1
    runs_n, groups_n = grid.num_runs, len(seeds)
    trained = 6 * B * macs - 2 * B * D * N  # forward + backward; no gradient for the input
    assert flops == runs_n * trained + groups_n * 2 * B * macs  # centring: once per seed
    assert flops < runs_n * (trained + 2 * B * macs)  # what a per-run centring costs
    # every product with the shared batch (G, B, D) is one product over the group's runs:
    # the group is its only batch dimension (first layer forward, its gradient, the centring)
    shared = [f for f in found if (groups_n, B, D) in f[:2] or (groups_n, D, B) in f[:2]]
    assert len(shared) == 3 and all(n_batch == 1 for *_, n_batch in shared)
    assert any((groups_n, k, N, D) in f[:2] for f in shared)  # [W_1 … W_K] in one product
