"""neural-tangents through the compatibility shim: closed forms and dense Jacobians as oracles."""

import chex
import jax
import jax.numpy as jnp
import pytest

from lazyrich.kernels._nt_compat import nt, stax


def arccos_relu_kernels(x1, x2, depth, w_std, b_std):
    """ReLU NNGP and NTK (ntk parameterization) by the arc-cosine recursion (Cho & Saul)."""
    d = x1.shape[1]
    q11 = w_std**2 * jnp.sum(x1 * x1, 1) / d + b_std**2
    q22 = w_std**2 * jnp.sum(x2 * x2, 1) / d + b_std**2
    q12 = w_std**2 * x1 @ x2.T / d + b_std**2
    ntk = q12
    for _ in range(depth):
        norm = jnp.sqrt(q11[:, None] * q22[None, :])
        cos = jnp.clip(q12 / norm, -1.0, 1.0)
        theta = jnp.arccos(cos)
        e_relu = norm * (jnp.sin(theta) + (jnp.pi - theta) * cos) / (2 * jnp.pi)
        e_drelu = (jnp.pi - theta) / (2 * jnp.pi)
        q12_new = w_std**2 * e_relu + b_std**2
        ntk = q12_new + w_std**2 * e_drelu * ntk
        q11 = w_std**2 * q11 / 2 + b_std**2  # E[relu(h)²] = q/2
        q22 = w_std**2 * q22 / 2 + b_std**2
        q12 = q12_new
    return q12, ntk


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("b_std", [None, 0.3])
def test_relu_infinite_kernels_equal_arccos_closed_form(x64, depth, b_std):
    w_std = 1.4
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(64, W_std=w_std, b_std=b_std), stax.Relu()]
    layers.append(stax.Dense(1, W_std=w_std, b_std=b_std))
    _, _, kernel_fn = stax.serial(*layers)
    x1 = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
    x2 = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    nngp, ntk = kernel_fn(x1, x2, ("nngp", "ntk"))
    ref_nngp, ref_ntk = arccos_relu_kernels(x1, x2, depth, w_std, b_std or 0.0)
    chex.assert_trees_all_close(nngp, ref_nngp, rtol=1e-10)
    chex.assert_trees_all_close(ntk, ref_ntk, rtol=1e-10)
    # and it is not trivially equal to something else
    assert float(jnp.max(jnp.abs(ntk - nngp))) > 1e-3


def test_nt_empirical_ntk_equals_dense_jacobian(x64):
    init_fn, apply_fn, _ = stax.serial(
        stax.Dense(7, b_std=0.2), stax.Erf(), stax.Dense(7), stax.Relu(), stax.Dense(3)
    )
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 4))
    x1 = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    x2 = jax.random.normal(jax.random.PRNGKey(2), (3, 4))

    @jax.jit
    def jac(x):
        j = jax.jacrev(lambda p: apply_fn(p, x))(params)
        return jnp.concatenate([leaf.reshape(x.shape[0], 3, -1) for leaf in jax.tree.leaves(j)], -1)

    j = jac(jnp.concatenate([x1, x2]))  # one compilation for both inputs
    full = jnp.einsum("icp,jdp->ijcd", j[:5], j[5:])
    # neural-tangents jitted (op by op it compiles hundreds of tiny programs): every trace
    # setting and implementation in one compiled call.
    # 3 (structured derivatives) fails on current JAX: linearize(has_aux)
    cases = [(axes, impl) for axes in [(-1,), ()] for impl in (1, 2)]
    fns = [nt.empirical_ntk_fn(apply_fn, trace_axes=a, implementation=i) for a, i in cases]
    got = jax.jit(lambda x1, x2, p: [f(x1, x2, p) for f in fns])(x1, x2, params)
    for (axes, impl), k in zip(cases, got, strict=True):
        ref = jnp.trace(full, axis1=2, axis2=3) / 3 if axes else full
        assert float(jnp.max(jnp.abs(k - ref)) / jnp.max(jnp.abs(ref))) < 1e-10, (axes, impl)
