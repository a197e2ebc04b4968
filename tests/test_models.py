"""Models: parameterization multipliers, coordinate check, centring, gradients."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.models import CNN, MLP, Frozen, functional, partition, scaled
from lazyrich.train import mse


def _one_step_sizes(parameterization: str, width: int, lr0: float = 0.5, **bias):
    """RMS of hidden pre-activations at init and of their change after one SGD step."""
    x = jax.random.normal(jax.random.key(1), (16, 32))
    y = jax.random.normal(jax.random.key(2), (16, 1))
    model = MLP(32, width, 3, 1, parameterization=parameterization, key=jax.random.key(0), **bias)
    params, apply = functional(model)
    grads = jax.grad(lambda p: mse(apply(p, x), y))(params)
    lr = lr0 * model.lr_multiplier
    new = eqx.combine(jax.tree.map(lambda p, g: p - lr * g, params, grads), partition(model)[1])
    rms = lambda a: float(jnp.sqrt(jnp.mean(a**2)))
    h0, h1 = model.preactivations(x), new.preactivations(x)
    return np.array([rms(a) for a in h0]), np.array(
        [rms(b - a) for a, b in zip(h0, h1, strict=True)]
    )


@pytest.mark.parametrize(
    "bias", [{}, {"use_bias": True, "bias_style": "paper"}], ids=["no-bias", "paper-bias"]
)
def test_mup_coordinate_check(bias):
    widths = (64, 256, 1024, 4096)
    sizes = [_one_step_sizes("mup", n, **bias) for n in widths]
    h = np.stack([s[0] for s in sizes])  # (width, layer)
    dh = np.stack([s[1] for s in sizes])
    assert np.all(h.max(0) / h.min(0) < 2.0), h
    assert np.all(dh.max(0) / dh.min(0) < 2.0), dh
    assert np.all(dh > 1e-3)  # updates are O(1), not vanishing


def test_paper_bias_is_zero_and_inside_the_scaling():
    model = MLP(8, 16, 2, 3, use_bias=True, bias_style="paper", key=jax.random.key(0))
    for layer in model.layers:
        assert layer.bias is not None and not np.any(np.asarray(layer.bias))
        assert layer.b_mult == layer.w_mult
    moved = eqx.tree_at(lambda m: m.layers[-1].bias, model, jnp.ones(3))
    x = jnp.ones((2, 8))
    np.testing.assert_allclose(moved(x) - model(x), 1.0 / 16, rtol=1e-6)  # readout: b/N
    with pytest.raises(ConfigError, match="bias_style"):
        MLP(8, 16, 2, use_bias=True, bias_style="odd", key=jax.random.key(0))


def test_standard_updates_grow_with_width():
    dh = np.stack([_one_step_sizes("standard", n)[1] for n in (64, 1024)])
    # the deepest hidden layer's one-step change grows visibly (about sqrt(N)) with width
    assert dh[1, -1] / dh[0, -1] > 4.0, dh


def test_mup_multipliers_match_paper():
    model = MLP(10, 50, 2, 3, parameterization="mup", key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 10))
    w0, w1, w2 = (layer.weight for layer in model.layers)
    h1 = x @ w0.T / np.sqrt(10)
    h2 = jax.nn.relu(h1) @ w1.T / np.sqrt(50)
    f = jax.nn.relu(h2) @ w2.T / 50
    np.testing.assert_allclose(model(x), f, rtol=1e-5, atol=1e-6)
    assert abs(float(jnp.std(w1)) - 1.0) < 0.05  # N(0, 1) weights


def test_centred_output_is_exactly_zero_and_scaled_by_gamma():
    net = MLP(8, 32, 2, 2, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 8))
    assert jnp.all(scaled(net, gamma=0.01)(x) == 0.0)
    np.testing.assert_allclose(scaled(net, gamma=4.0, centre=False)(x), net(x) / 4.0, rtol=1e-6)


def test_frozen_leaves_are_not_params():
    model = scaled(MLP(8, 16, 1, 1, key=jax.random.key(0)), gamma=2.0)
    params, _ = functional(model)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    assert n_params == 8 * 16 + 16 * 1
    assert isinstance(model.init_net, Frozen)


@pytest.mark.parametrize("parameterization", ["standard", "ntk", "mup"])
def test_gradients_match_finite_differences(x64, parameterization):
    net = MLP(
        6,
        12,
        2,
        2,
        activation="tanh",
        parameterization=parameterization,
        use_bias=True,
        key=jax.random.key(3),
    )
    model = scaled(net, gamma=0.7, centre=True)
    # move away from init so the centred output is not identically zero
    params, apply = functional(model)
    params = jax.tree.map(lambda p: p + 0.1 * jnp.sin(jnp.arange(p.size).reshape(p.shape)), params)
    x = jax.random.normal(jax.random.key(4), (7, 6))
    y = jax.random.normal(jax.random.key(5), (7, 2))
    loss = lambda p: mse(apply(p, x), y)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    grad = jax.flatten_util.ravel_pytree(jax.grad(loss)(params))[0]
    eps = 1e-6
    idx = np.random.default_rng(0).choice(flat.size, 25, replace=False)
    for i in idx:
        e = jnp.zeros_like(flat).at[i].set(eps)
        fd = (loss(unravel(flat + e)) - loss(unravel(flat - e))) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("shape", [(40, 1), (8, 8, 3)])
def test_cnn_shapes_and_centring(shape):
    net = CNN(shape, 4, 10, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, *shape))
    assert net(x).shape == (3, 10)
    assert jnp.all(scaled(net, gamma=0.5)(x) == 0.0)


def test_float64_cnn_takes_float32_data_like_a_matmul(x64):
    # e.g. mnist1d (float32) through a float64 CNN in the γ-η study's float64 runs
    net = CNN((8, 1), 2, 3, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (2, 8), jnp.float32)
    out = net(x)
    assert out.dtype == jnp.float64
    np.testing.assert_array_equal(out, net(x.astype(jnp.float64)))


def test_gamma_can_be_vmapped():
    gammas = jnp.array([0.5, 1.0, 2.0])
    keys = jax.random.split(jax.random.key(0), 3)
    build = lambda k, g: scaled(MLP(4, 8, 1, 1, key=k), gamma=g, centre=False)
    models = eqx.filter_vmap(build)(keys, gammas)
    x = jnp.ones((2, 4))
    out = eqx.filter_vmap(lambda m: m(x))(models)
    for i in range(3):
        np.testing.assert_allclose(out[i], build(keys[i], float(gammas[i]))(x), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0), "width must be >= 1"),
        (dict(depth=0), "depth must be >= 1"),
        (dict(activation="gelu"), "unknown activation"),
        (dict(parameterization="sp"), "unknown parameterization"),
    ],
)
def test_bad_model_arguments(kwargs, match):
    args = dict(in_dim=4, width=8, depth=2, out_dim=1) | kwargs
    with pytest.raises(ConfigError, match=match):
        MLP(**args, key=jax.random.key(0))


def test_bad_gamma():
    net = MLP(4, 8, 1, 1, key=jax.random.key(0))
    for g in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="gamma must be"):
            scaled(net, gamma=g)
