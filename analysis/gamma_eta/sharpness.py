"""Sharpness along training at η*(γ): the sweep's runs, trained again by the engine.

The sweep records metrics, not parameters, so the runs at each seed's η*(γ) are run once more
with the engine (`lazyrich.train.train`) with the sweep's model factory, online stream, seed,
precision rule and the sweep's own step (`OnlineSetup.step`, θ ← θ − η·N·direction(∇L): plain
SGD for the default direction, momentum where the setup's `direction` says so), so the replay
is the same trajectory. At the checkpoints a measure takes the top Hessian eigenvalue of the
training loss on one fixed batch, by Lanczos on Hessian-vector products
(`lazyrich.measures.top_hessian_eigenvalue`); no dense Hessian is formed.

**One compiled program for every seed.** The fixed batch travels as data (a field of the
replay's `Stream`, an input of the compiled program) and the Lanczos start key is derived from
the run's traced seed, so nothing seed- or batch-specific is a constant of the program; the
factory, step and measure compare equal across calls and every γ of the case is replayed (a γ
without a finite η* runs at a placeholder η and is masked), so each seed's call has the same
shapes and reuses the first call's programs.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from lazyrich.measures import top_hessian_eigenvalue
from lazyrich.train import Grid, Snapshot, Stream, get_loss, train

from .setup import OnlineSetup


class FixedBatchStream(Stream):
    """The sweep's stream plus the fixed batch whose training-loss Hessian is measured (data,
    so an input of the compiled program rather than a constant of it)."""

    fixed_x: Array
    fixed_y: Array


class TopHessian(eqx.Module):
    """The measure: top Hessian eigenvalue of the loss on the stream's fixed batch; the Lanczos
    start vector from `key(seed + 7)`, the run's traced seed."""

    loss: str = eqx.field(static=True)
    num_iters: int = eqx.field(static=True)

    def __call__(self, s: Snapshot) -> jax.Array:
        x, y = s.data.fixed_x, s.data.fixed_y
        loss_fn = get_loss(self.loss)
        lam, _ = top_hessian_eigenvalue(
            lambda q: loss_fn(s.apply(q, x), y),
            s.params,
            num_iters=self.num_iters,
            key=jax.random.key(s.hp["seed"] + 7),
        )
        return lam


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
    x64: bool | Callable[[dict[str, float]], bool] = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top Hessian eigenvalue at `checkpoints` (steps, from 0) of runs at (γ_i, η_i).

    **Arguments:**

    - `setup`: the sweep's setup (model, stream, loss, learning-rate multiplier, direction).
    - `gammas`, `etas`: one run per pair (e.g. every γ at its η*); a non-finite η runs at a
      placeholder and its row is NaN (so every seed's call has the same shapes).
    - `checkpoints`: increasing steps >= 0 at which the sharpness is measured.
    - `fixed_x`, `fixed_y`: the fixed batch defining the training loss.
    - `seed`: the sweep's seed whose initialisation and stream are replayed.
    - `num_iters`: Lanczos steps.
    - `x64`: the sweep's precision rule (`bool`, or a function of a run's hyperparameters).

    **Returns:** `(sharpness, test_loss)`, each of shape `(n_runs, n_checkpoints)`.
    """
    etas = np.asarray(etas, float)
    ok = np.isfinite(etas) & (etas > 0)
    placeholder = float(np.min(etas[ok])) if ok.any() else 1e-3
    fx, fy = jnp.asarray(fixed_x), jnp.asarray(fixed_y)
    data = FixedBatchStream(setup.sample, setup.test_x, setup.test_y, fx, fy)
    ds = train(
        setup.factory,
        setup.step,
        data,
        grid=Grid.product(
            gamma=np.asarray(gammas, float),
            eta=np.where(ok, etas, placeholder)[:, None],
            seed=[int(seed)],
        ),
        record_at=[int(t) for t in checkpoints],
        batch=setup.batch,
        loss=setup.loss,
        measures={"sharpness": TopHessian(setup.loss, int(num_iters))},
        threshold=setup.threshold,
        x64=x64,
        process=(0, 1),  # the replay is the lead process's alone, not split over processes
        progress=False,
    )
    pick = lambda k: np.where(ok[:, None], ds[k].values[:, 0, 0], np.nan)  # (γ, η, seed, step)
    return pick("sharpness"), pick("test_loss")
