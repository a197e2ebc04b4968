"""Steps through the engine against plain loops: SGD and Adam (optax), exact Gauss-Newton
(`exact_gauss_newton(None, lr)`, each seed its own RevMLP) and P-BFGS (`p_bfgs(P)`).

Each engine call trains a 2 learning rates × 2 seeds grid, vmapped, in float64; the oracle is
a Python loop of single runs of the same optax transformation on the same batches
(`batch_indices(fold_in(key(seed), 1), n, batch, t)`, as the engine draws them). One grid cell
diverges: its records after `diverged_step` are NaN and the other cells are unaffected.
`chunk_size=1` gives the unchunked results to float64 rounding (a seed's runs share their
batch, and the first layer is one product over them, tiled by how many runs share a seed;
P-BFGS's shared P is not copied per run either: XLA may batch its products differently)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from lazyrich.data import Dataset, batch_indices
from lazyrich.models import RevMLP, partition
from lazyrich.optim import exact_gauss_newton, p_bfgs
from lazyrich.train import Apply, Grid, final_params, get_loss, train

N, BATCH, STEPS, D_IN = 16, 4, 6, 6
RECORD = [0, 2, 4, 6]
THRESHOLD = 1e3


def _data():
    k = jax.random.split(jax.random.key(11), 4)
    return Dataset(
        jax.random.normal(k[0], (N, D_IN)),
        jax.random.randint(k[1], (N,), 0, 3),
        jax.random.normal(k[2], (10, D_IN)),
        jax.random.randint(k[3], (10,), 0, 3),
        name="tiny",
        num_classes=3,
    )


def _revmlp(key, hp=None):
    del hp
    return RevMLP(D_IN, num_blocks=2, hidden=5, out_dim=3, sigma=0.3, key=key)


def _oracle(make_opt, model_of, data, eta, seed):
    """One run by hand: `(params after each step, batch losses, diverged step or -1)`."""
    loss = get_loss("mse")
    params, rest = partition(model_of(seed))
    apply = Apply(rest)
    hp = {"eta": jnp.asarray(eta), "seed": jnp.asarray(seed)}
    opt = make_opt if isinstance(make_opt, optax.GradientTransformation) else make_opt(hp)
    state = opt.init(params)
    key = jax.random.fold_in(jax.random.key(seed), 1)

    @jax.jit
    def step(params, state, idx):
        x, y = data.x_train[idx], data.y_train[idx]
        value_fn = lambda p: loss(apply(p, x), y)  # noqa: E731
        value, grad = jax.value_and_grad(value_fn)(params)
        extra = dict(value=value, grad=grad, value_fn=value_fn, x=x, y=y, apply=apply)
        if isinstance(opt, optax.GradientTransformationExtraArgs):
            updates, state = opt.update(grad, state, params, **extra)
        else:
            updates, state = opt.update(grad, state, params)
        return optax.apply_updates(params, updates), state, value

    history, diverged = [params], -1
    for t in range(STEPS):
        new, new_state, value = step(params, state, batch_indices(key, N, BATCH, t))
        if not np.isfinite(float(value)) or float(value) > THRESHOLD:
            diverged = t
            break
        params, state = new, new_state
        history.append(params)
    return history, diverged


def _check(model, make_opt, model_of, etas, bad_eta=None, chunk_rtol=1e-12):
    data = _data()
    grid = Grid.product(eta=etas, seed=[0, 1])
    kw = dict(grid=grid, batch=BATCH, record_at=RECORD, threshold=THRESHOLD, x64=True)
    ds = train(model, make_opt, data, keep_params=True, progress=False, **kw)
    params = final_params(ds, model)
    chunked = train(model, make_opt, data, chunk_size=1, progress=False, **kw)
    for name in chunked.data_vars:  # chunk_size=1 equals unchunked (to rounding with chunk_rtol)
        if chunk_rtol:
            np.testing.assert_allclose(
                chunked[name].values, ds[name].values, rtol=chunk_rtol, err_msg=name
            )
        else:
            np.testing.assert_array_equal(chunked[name].values, ds[name].values, err_msg=name)
    loss = get_loss("mse")
    with jax.enable_x64(True):
        data64 = jax.tree.map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, data
        )
        for i, eta in enumerate(etas):
            for j, seed in enumerate([0, 1]):
                history, dstep = _oracle(make_opt, model_of, data64, eta, seed)
                run = ds.isel(eta=i, seed=j)
                assert int(run.diverged_step) == dstep
                assert bool(run.diverged) == (dstep >= 0)
                assert (dstep >= 0) == (eta == bad_eta)
                final = jax.tree.map(lambda a, r=i * 2 + j: a[r], params)
                np.testing.assert_allclose(
                    ravel_pytree(final)[0], ravel_pytree(history[-1])[0], rtol=1e-9, atol=1e-12
                )
                for k, r in enumerate(RECORD):
                    got = float(run.test_loss.values[k])
                    if dstep >= 0 and r > dstep:
                        assert np.isnan(got)  # every record after divergence is NaN
                        continue
                    p, rest = history[r], partition(model_of(seed))[1]
                    want = float(loss(Apply(rest)(p, data64.x_test), data64.y_test))
                    np.testing.assert_allclose(got, want, rtol=1e-9)
    if bad_eta is not None:
        assert bool(ds.diverged.sel(eta=bad_eta).all())
    return ds


def _shared_model(seed):
    del seed
    with jax.enable_x64(True):
        return jax.tree.map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a,
            _revmlp(jax.random.key(5)),
        )


def _own_model(seed):
    with jax.enable_x64(True):
        return _revmlp(jax.random.fold_in(jax.random.key(seed), 0))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optax_sgd_and_adam_equal_plain_loops(name):
    make = {
        "sgd": lambda hp: optax.sgd(hp["eta"]),
        "adam": lambda hp: optax.adam(hp["eta"]),
    }[name]
    etas = {"sgd": [0.1, 5e4], "adam": [1e-2, 3e-2]}[name]
    _check(_revmlp, make, _own_model, etas, bad_eta=5e4 if name == "sgd" else None)


def test_exact_gauss_newton_each_seed_its_own_revmlp():
    # each seed's RevMLP has its own C and U; lr 1e5 blows the second step up (a loss of 165
    # before it diverges: chunked and unchunked then agree to 1e-12 × the growth, not 1e-12)
    make = lambda hp: exact_gauss_newton(None, hp["eta"], loss="mse")  # noqa: E731
    _check(_revmlp, make, _own_model, [0.3, 1e5], bad_eta=1e5, chunk_rtol=1e-10)


def test_p_bfgs_through_the_engine():
    """P-BFGS has no learning rate: the grid is 2 × 2 over `eta`, which it ignores, and seeds
    (each its own RevMLP and data order); P is a leaf of the transformation (an input of the
    compiled program, per-run copies inside it)."""
    w0, _ = ravel_pytree(partition(_own_model(0))[0])
    with jax.enable_x64(True):
        q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(3), (w0.size, 4), jnp.float64))
        p = q.T
    ds = _check(_revmlp, p_bfgs(p), _own_model, [1.0, 0.5], chunk_rtol=1e-12)
    assert np.isfinite(ds.test_loss.values).all()
    np.testing.assert_array_equal(ds.test_loss.isel(eta=0).values, ds.test_loss.isel(eta=1).values)
