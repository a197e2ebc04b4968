"""Compiled code is keyed on structure: `Apply` is a pytree, and a fresh model of the same
shapes reuses the programs compiled for the first (no identity-keyed caches)."""

import contextlib

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

from lazyrich.errors import ConfigError
from lazyrich.kernels import empirical_ntk, ntk_vector_product
from lazyrich.models import MLP, Apply, Frozen, RevMLP, functional, scaled

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Counts XLA backend compilations inside the block (a list; its length is the count)."""
    events: list[str] = []

    def listener(event, duration_secs, **kwargs):
        if event == BACKEND_COMPILE:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def dense_ntk(apply, params, x):
    """Oracle: `J Jᵀ` from `jax.jacrev`, traced as a mean over the logits."""
    j = jax.jacrev(lambda p: apply(p, x))(params)
    n, k = apply(params, x).shape
    j = jnp.concatenate([leaf.reshape(n, k, -1) for leaf in jax.tree.leaves(j)], axis=-1)
    return jnp.einsum("icp,jcp->ij", j, j) / k


def centred_mlp(seed):
    net = MLP(5, 9, 2, 3, parameterization="mup", use_bias=True, key=jax.random.key(seed))
    return scaled(net, gamma=0.5, centre=True)


def frozen_leaves(model):
    """The array leaves of every `Frozen` in `model`, in tree order."""
    frozen = jax.tree.leaves(model, is_leaf=lambda x: isinstance(x, Frozen))
    return [leaf for f in frozen if isinstance(f, Frozen) for leaf in jax.tree.leaves(f)]


@pytest.mark.parametrize("kind", ["mlp", "centred", "revmlp"])
def test_apply_is_a_pytree_of_the_frozen_arrays(kind):
    """`functional` splits exactly the trainable leaves; `Apply` holds the frozen ones."""
    key = jax.random.key(0)
    model = {
        "mlp": lambda: MLP(5, 9, 2, 3, use_bias=True, key=key),
        "centred": lambda: centred_mlp(0),
        "revmlp": lambda: RevMLP(6, num_blocks=2, hidden=8, out_dim=3, key=key),
    }[kind]()
    params, apply = functional(model)
    assert isinstance(apply, Apply) and isinstance(apply, eqx.Module)
    frozen = frozen_leaves(model)
    assert (len(frozen) > 0) == (kind != "mlp")
    # the leaves of apply are exactly the frozen arrays (by identity, in order)
    assert [id(a) for a in jax.tree.leaves(apply)] == [id(a) for a in frozen]
    # params: every inexact array outside a Frozen, and nothing else
    trainable = jax.tree.leaves(
        jax.tree.map(
            lambda a: None if isinstance(a, Frozen) else a,
            model,
            is_leaf=lambda a: isinstance(a, Frozen),
        )
    )
    assert [id(a) for a in jax.tree.leaves(params)] == [id(a) for a in trainable]
    assert all(eqx.is_inexact_array(a) for a in trainable)
    # model(params) rebuilds the model; __call__ is the model on a batch
    assert eqx.tree_equal(apply.model(params), model)
    x = jax.random.normal(jax.random.key(1), (4, 6 if kind == "revmlp" else 5))
    chex.assert_trees_all_equal(apply(params, x), model(x))
    # a pytree: jax transformations map over the frozen arrays
    doubled = jax.tree.map(lambda a: 2 * a, apply)
    assert isinstance(doubled, Apply)


@pytest.mark.parametrize("method", ["auto", "jacobian"])
def test_fresh_model_of_same_structure_does_not_recompile(x64, method):
    """`empirical_ntk` on a second model (another init key; its own frozen copy and γ) compiles
    nothing, and is still the dense `J Jᵀ` of that model. Identity-keyed caches fail this."""
    x = jax.random.normal(jax.random.key(9), (6, 5))
    results = []
    for seed in range(3):
        params, apply = functional(centred_mlp(seed))  # a fresh Apply each time
        with count_compiles() as compiles:
            k = empirical_ntk(apply, params, x, method=method)
            v = ntk_vector_product(apply, params, x, jnp.ones((6, 3)))
            jax.block_until_ready((k, v))
        results.append((len(compiles), k, dense_ntk(apply, params, x)))
    assert results[0][0] > 0  # the counter sees compilations
    assert [c for c, _, _ in results[1:]] == [0, 0], [c for c, _, _ in results]
    for _, k, ref in results:
        assert float(jnp.max(jnp.abs(k - ref)) / jnp.max(jnp.abs(ref))) < 1e-10
    assert float(jnp.max(jnp.abs(results[0][1] - results[1][1]))) > 1e-3  # different models


def test_structured_needs_an_apply():
    """A plain function: "auto" falls back to the Jacobian method, "structured" names the fix."""
    params, apply = functional(MLP(5, 9, 2, 3, key=jax.random.key(0)))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    plain = lambda p, xx: apply(p, xx)  # noqa: E731
    with pytest.raises(ConfigError, match="lazyrich.functional") as err:
        empirical_ntk(plain, params, x, method="structured")
    assert "\n" not in str(err.value)
    chex.assert_trees_all_close(
        empirical_ntk(plain, params, x),
        empirical_ntk(apply, params, x, method="structured"),
        rtol=1e-5,
        atol=1e-6,
    )


def test_fresh_optax_object_of_same_settings_does_not_recompile():
    """The engine keys an optax transformation on what its closures compute: a second
    `optax.sgd(0.1, momentum=0.9)` built apart reuses the first's programs; another learning
    rate is another program (and another result); a closure over an array keys on its
    contents, and one over an arbitrary object is a ConfigError (no identity fallback)."""
    from lazyrich.data import load_dataset
    from lazyrich.train import Grid, train
    from lazyrich.train._steps import _keyed

    data = load_dataset("teacher", n_train=32, n_test=16, dim=4)
    model = MLP(4, 8, 2, 1, key=jax.random.key(1))

    def run(opt):
        return train(model, opt, data, batch=8, record_at=[4], grid=Grid.product(seed=[0]),
                     progress=False)  # fmt: skip

    first = run(optax.sgd(0.1, momentum=0.9))
    with count_compiles() as compiles:
        again = run(optax.sgd(0.1, momentum=0.9))
    assert len(compiles) == 0
    chex.assert_trees_all_equal(first["train_loss"].values, again["train_loss"].values)
    with count_compiles() as compiles:
        other = run(optax.sgd(0.3, momentum=0.9))
    assert len(compiles) > 0
    assert not jnp.allclose(first["train_loss"].values, other["train_loss"].values)
    # keys: by settings, not by object; an array in a closure by its shape, dtype and contents
    assert _keyed(optax.adam(1e-3)) == _keyed(optax.adam(1e-3))
    assert _keyed(optax.adam(1e-3)) != _keyed(optax.adam(2e-3))
    assert _keyed(optax.sgd(jnp.asarray(0.1))) == _keyed(optax.sgd(jnp.asarray(0.1)))
    assert _keyed(optax.sgd(jnp.asarray(0.1))) != _keyed(optax.sgd(jnp.asarray(0.2)))
    assert _keyed(optax.sgd(jnp.asarray(0.1))) != _keyed(optax.sgd(jnp.asarray([0.1])))
    # a pytree (an eqx.Module) in a closure: by structure and leaves
    frozen = lambda a: Frozen(jnp.full(3, a))  # noqa: E731
    scale = lambda m: lambda hp: optax.scale(float(m.value[0]))  # noqa: E731
    assert _keyed(scale(frozen(2.0))) == _keyed(scale(frozen(2.0)))
    assert _keyed(scale(frozen(2.0))) != _keyed(scale(frozen(3.0)))

    class Opaque:  # not a pytree and not comparable by value
        pass

    held = Opaque()
    with pytest.raises(ConfigError, match="cannot be compared by value"):
        _keyed(lambda hp: optax.sgd(0.1) if held else None)
