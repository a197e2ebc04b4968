"""Sharpness along training at η*(γ): re-run seed 0 of the sweep and take Lanczos eigenvalues.

The sweep engine returns metrics, not parameters, so the runs at η*(γ) are trained again here
with exactly the engine's initialisation and online stream (seed key k: init from
`fold_in(k, 0)`, the batch of step t from `fold_in(fold_in(k, 1), t)`) and plain SGD at
η·N — one `vmap` over γ, in float64. At each checkpoint the top Hessian eigenvalue of the
training loss on one fixed batch is computed by Lanczos on Hessian-vector products
(`lazyrich.measures._sharpness`), vmapped over γ. No dense Hessian is formed.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lazyrich.measures import top_hessian_eigenvalue
from lazyrich.models import partition
from lazyrich.train import OnlineSetup, get_loss


def sharpness_along(
    setup: OnlineSetup,
    gammas: np.ndarray,
    etas: np.ndarray,
    checkpoints: np.ndarray,
    *,
    fixed_x: jax.Array,
    fixed_y: jax.Array,
    seed: int = 0,
    num_iters: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Top Hessian eigenvalue at `checkpoints` (steps, from 0) of runs at (γ_i, η_i).

    **Arguments:**

    - `setup`: the sweep's setup (model, stream, loss, learning-rate multiplier).
    - `gammas`, `etas`: one run per pair (e.g. every γ at its η*).
    - `checkpoints`: increasing steps >= 0 at which the sharpness is measured.
    - `fixed_x`, `fixed_y`: the fixed batch defining the training loss.
    - `seed`: the sweep's seed index whose initialisation and stream are replayed.
    - `num_iters`: Lanczos steps.

    **Returns:** `(sharpness, test_loss)`, each of shape `(n_runs, n_checkpoints)`.
    """
    loss_fn = get_loss(setup.loss)
    lr_mult = setup.lr_multiplier
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        init_key, data_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
        g = jnp.asarray(gammas, jnp.float64)
        e = jnp.asarray(etas, jnp.float64)
        models = eqx.filter_vmap(lambda gg: setup.make_model(init_key, gg))(g)
        params, rest = partition(models)
        fx = (
            jnp.asarray(fixed_x, jnp.float64)
            if jnp.issubdtype(fixed_x.dtype, jnp.floating)
            else fixed_x
        )
        tx = setup.test_x.astype(jnp.float64)

        # everything is passed as an argument: captured arrays would be constant-folded by XLA
        @jax.jit
        def advance(params, rest, e, start, stop):
            def step(t, p):
                x, y = setup.sample(jax.random.fold_in(data_key, t), setup.batch)

                def one(p, r, eta):
                    grads = jax.grad(lambda q: loss_fn(eqx.combine(q, r)(x), y))(p)
                    return jax.tree.map(lambda a, b: a - (eta * lr_mult) * b, p, grads)

                return jax.vmap(one)(p, rest, e)

            return jax.lax.fori_loop(start, stop, step, params)

        @jax.jit
        def measure(params, rest, fx, fy, tx, ty):
            def one(p, r):
                train = lambda q: loss_fn(eqx.combine(q, r)(fx), fy)
                lam, _ = top_hessian_eigenvalue(
                    train, p, num_iters=num_iters, key=jax.random.key(seed + 7)
                )
                return lam, loss_fn(eqx.combine(p, r)(tx), ty)

            return jax.vmap(one)(params, rest)

        lams, tests, t = [], [], 0
        for c in np.asarray(checkpoints, dtype=np.int64):
            params = advance(params, rest, e, jnp.int32(t), jnp.int32(c))
            t = int(c)
            lam, test = measure(params, rest, fx, fixed_y, tx, setup.test_y)
            lams.append(np.asarray(lam))
            tests.append(np.asarray(test))
    return np.stack(lams, 1), np.stack(tests, 1)
