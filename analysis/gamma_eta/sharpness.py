"""Sharpness along training at η*(γ): one seed of the sweep, trained again by the engine.

The sweep records metrics, not parameters, so the runs at η*(γ) are run once more with the
engine (`lazyrich.train.train`) — the sweep's model factory, online stream and one seed (the
study replays every seed at its own η*), so the same initialisation and batches, and plain
SGD at η·N, one vmapped γ axis, in float64 — with
a measure at the checkpoints: the top Hessian eigenvalue of the training loss on one fixed
batch, by Lanczos on Hessian-vector products (`lazyrich.measures.top_hessian_eigenvalue`).
No dense Hessian is formed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.measures import top_hessian_eigenvalue
from lazyrich.train import Grid, Snapshot, Stream, get_loss, train

from .setup import OnlineSetup


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
    - `seed`: the sweep's seed whose initialisation and stream are replayed.
    - `num_iters`: Lanczos steps.

    **Returns:** `(sharpness, test_loss)`, each of shape `(n_runs, n_checkpoints)`.
    """
    loss_fn = get_loss(setup.loss)
    fx, fy = np.asarray(fixed_x), np.asarray(fixed_y)
    floating = np.issubdtype(fx.dtype, np.floating)

    def sharpness(s: Snapshot) -> jax.Array:
        x = jnp.asarray(fx, jnp.result_type(float)) if floating else jnp.asarray(fx)
        y = jnp.asarray(fy)
        lam, _ = top_hessian_eigenvalue(
            lambda q: loss_fn(s.apply(q, x), y),
            s.params,
            num_iters=num_iters,
            key=jax.random.key(seed + 7),
        )
        return lam

    mult = float(setup.lr_multiplier)
    ds = train(
        lambda key, hp: setup.make_model(key, hp["gamma"]),
        lambda hp: optax.sgd(hp["eta"] * mult),
        Stream(setup.sample, setup.test_x, setup.test_y),
        grid=Grid.product(
            gamma=np.asarray(gammas, float),
            eta=np.asarray(etas, float)[:, None],
            seed=[seed],
        ),
        record_at=[int(t) for t in checkpoints],
        batch=setup.batch,
        loss=setup.loss,
        measures={"sharpness": sharpness},
        threshold=setup.threshold,
        x64=True,
        process=(0, 1),  # the replay is the lead process's alone, not split over processes
        progress=False,
    )
    assert not isinstance(ds, tuple)
    pick = lambda k: ds[k].values[:, 0, 0]  # (γ, η, seed, step) -> (run, step)
    return pick("sharpness"), pick("test_loss")
