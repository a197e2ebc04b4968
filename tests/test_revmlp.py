"""RevMLP: forward formula, frozen parts, exact inverse (also after training), errors."""

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import pytest

from lazyrich.errors import ConfigError
from lazyrich.models._frozen import functional, param_count, partition
from lazyrich.models._revmlp import RevMLP

D, H, K = 8, 32, 3


def _model(num_blocks=2, sigma=0.3, linear_first=True, dtype=None):
    return RevMLP(
        D,
        num_blocks=num_blocks,
        hidden=H,
        out_dim=K,
        sigma=sigma,
        linear_first=linear_first,
        dtype=dtype,
        key=jax.random.key(0),
    )


def _manual_forward(model, x):
    """The paper's column-vector formulas, one sample at a time (independent oracle)."""

    def one(v):
        for block in model.blocks:
            act = (lambda u: jnp.maximum(u, 0.0)) if block.relu else (lambda u: u)
            x1, x2 = v[: D // 2], v[D // 2 :]
            y1 = x1 + block.w_f @ act(block.c_f.value @ x2) + block.b_f
            y2 = x2 + block.w_g @ act(block.c_g.value @ y1) + block.b_g
            v = jnp.concatenate([y1, y2])
        return model.readout.value.T @ v

    return jax.vmap(one)(x.reshape(x.shape[0], -1))


def test_forward_matches_formula_and_shapes(x64):
    model = _model(num_blocks=3, dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(1), (5, 2, 4))  # flattened to d = 8
    z = model(x)
    chex.assert_shape(z, (5, K))
    chex.assert_trees_all_close(z, _manual_forward(model, x), rtol=1e-12, atol=1e-12)
    outs = model.blocks_forward(x)
    assert len(outs) == 3
    chex.assert_trees_all_close(outs[-1] @ model.readout.value, z, rtol=1e-12)
    assert [b.relu for b in model.blocks] == [False, True, True]
    assert all(b.relu for b in _model(linear_first=False).blocks)


def test_frozen_parts_and_init_statistics():
    model = RevMLP(64, num_blocks=2, hidden=400, out_dim=10, key=jax.random.key(3))
    params, _ = functional(model)
    # Only W and b are trainable: 2 blocks × 2 halves × (d/2·h + d/2).
    assert param_count(model) == 2 * 2 * (32 * 400 + 32)
    assert params.readout is None and params.blocks[0].c_f is None
    u = model.readout.value
    chex.assert_trees_all_close(u.T @ u, jnp.eye(10), atol=1e-5)
    c = model.blocks[1].c_g.value
    chex.assert_shape(c, (400, 32))
    assert abs(float(jnp.var(c)) * 400 - 1.0) < 0.05  # N(0, 1/h)
    w = model.blocks[0].w_f
    chex.assert_shape(w, (32, 400))
    assert abs(float(jnp.std(w)) / 1e-3 - 1.0) < 0.05  # N(0, sigma²), sigma = 1e-3
    assert float(jnp.max(jnp.abs(model.blocks[0].b_f))) == 0.0


def _recon_error(model, x):
    xf = x.reshape(x.shape[0], -1)
    return float(jnp.max(jnp.abs(model.inverse(model.features(x)) - xf)))


def test_inverse_exact_to_float32_roundoff_also_after_training():
    model = _model(num_blocks=3, sigma=0.3)
    x = jax.random.normal(jax.random.key(1), (64, D))
    y = jax.random.normal(jax.random.key(2), (64, K))
    scale = float(jnp.max(jnp.abs(model.features(x))))
    eps32 = float(jnp.finfo(jnp.float32).eps)
    assert _recon_error(model, x) < 50 * eps32 * scale
    # Per block too.
    h = x
    for block, out in zip(model.blocks, model.blocks_forward(x), strict=True):
        assert float(jnp.max(jnp.abs(block.inverse(out) - h))) < 20 * eps32 * scale
        h = out

    params, apply = functional(model)
    _, rest = partition(model)
    opt = optax.adam(3e-2)
    state = opt.init(params)
    loss = lambda p: jnp.mean((apply(p, x) - y) ** 2)
    loss0 = float(loss(params))

    @jax.jit
    def step(params, state):
        upd, state = opt.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, upd), state

    for _ in range(20):
        params, state = step(params, state)
    trained = eqx.combine(params, rest)
    assert float(loss(params)) < 0.9 * loss0  # the weights really moved
    moved = float(jnp.max(jnp.abs(trained.blocks[0].w_f - model.blocks[0].w_f)))
    assert moved > 0.1
    scale = float(jnp.max(jnp.abs(trained.features(x))))
    assert _recon_error(trained, x) < 50 * eps32 * scale


def test_inverse_is_not_trivially_identity(x64):
    # With σ = 0.3 the blocks change the input a lot; a wrong inverse (e.g. F and G swapped)
    # would fail by orders of magnitude more than round-off.
    model = _model(num_blocks=2, sigma=0.3, dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(1), (16, D))
    assert float(jnp.max(jnp.abs(model.features(x) - x))) > 0.1
    assert _recon_error(model, x) < 1e-12
    b = model.blocks[1]
    wrong = jnp.concatenate(
        [model.features(x)[:, :4] - b.g(model.features(x)[:, 4:]), model.features(x)[:, 4:]],
        axis=1,
    )
    assert float(jnp.max(jnp.abs(wrong - model.blocks_forward(x)[0]))) > 1e-3


@pytest.mark.parametrize("d", [7, 1, 785])
def test_odd_input_dimension_is_a_config_error(d):
    with pytest.raises(ConfigError, match="RevMLP needs an even input dimension.*pad or crop"):
        RevMLP(d, num_blocks=2, hidden=8, out_dim=1, key=jax.random.key(0))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="num_blocks"):
        RevMLP(8, num_blocks=0, hidden=8, out_dim=2, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="out_dim"):
        RevMLP(8, num_blocks=1, hidden=8, out_dim=9, key=jax.random.key(0))
