"""The exact Gauss-Newton study's experiment: one engine call per (setting, optimizer).

Every run starts from the same RevMLP (`build_model`) with the data order of `seed` (the
engine's `batch_indices(fold_in(key(seed), 1), n, batch, t)`, shared by every optimizer).
Records at every step give the per-step batch-loss change: the engine's `train_loss` at step
`t` (a window of one step) is the loss on the batch of step `t − 1` before that step, and the
measure `batch_after` the loss on the same batch after it. NTK similarity, kernel distance and
CKA are measures that compute only at the measured epochs (a `lax.cond` on the step; NaN
elsewhere), from the run's params and its initial params (`keep_initial=True`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from lazyrich.data import Dataset, batch_indices, num_batches
from lazyrich.kernels import kernel_distance, linear_cka, ntk_probe_similarity, ntk_vector_product
from lazyrich.optim import exact_gauss_newton
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, Snapshot, get_loss, train

from .config import NAME, NUM_CLASSES, Config, build_model, input_dim, load_data, validate
from .figures import figures
from .summary import summarize


def relative_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """`(L_after − L_before) / L_before`: negative when the step lowered the batch loss."""
    return (after - before) / before


def measure_epochs(c: Config) -> np.ndarray:
    """Epochs with NTK / CKA measurements: every `measure_every`, and the last."""
    return np.unique(np.r_[np.arange(0, c.epochs + 1, c.measure_every), c.epochs])


def _probe(apply, params, x, v, batch_size: int):
    """On the probe batch: `K v`, the full NTK `(n·k, n·k)` and each block's output."""
    model = apply.model
    apply = lambda p, xx: model(p)(xx)  # noqa: E731 (a plain function of the traced model)
    kv = ntk_vector_product(apply, params, x, v)
    n, k = v.shape
    cols = jax.lax.map(
        lambda e: ntk_vector_product(apply, params, x, e.reshape(n, k)).reshape(-1),
        jnp.eye(n * k, dtype=v.dtype),
        batch_size=batch_size,
    )
    return kv, cols, model(params).blocks_forward(x)


def make_measures(c: Config, data: Dataset, batch: int | None, m_steps: np.ndarray, size: int):
    """`batch_after` (the loss after each step on that step's batch) and `lazy` (NTK
    similarity, kernel distance, per-block CKA to initialisation, at the steps `m_steps`)."""
    loss_fn = get_loss(c.loss)
    n = int(data.x_train.shape[0])
    probe_x = data.x_train[: c.probe]
    probe_v = jax.random.normal(
        jax.random.fold_in(jax.random.key(c.seed), 2), (c.probe, NUM_CLASSES), probe_x.dtype
    )
    # NTK-vector products run `batch_size` at a time; bound their parameter-sized tangents
    batch_size = int(max(1, min(probe_v.size, 5e8 // size)))
    steps = jnp.asarray(m_steps, jnp.int32)

    def batch_after(s: Snapshot):
        d = s.data
        if batch is None:
            x, y = d.x_train, d.y_train
        else:
            key = jax.random.fold_in(jax.random.key(s.hp["seed"]), 1)
            idx = batch_indices(key, n, batch, jnp.maximum(s.step - 1, 0))
            x, y = d.x_train[idx], d.y_train[idx]
        value = loss_fn(s.apply(s.params, x), y)
        return jnp.where(s.step > 0, value, jnp.nan)

    def lazy(s: Snapshot):
        x, v = probe_x.astype(s.data.x_train.dtype), probe_v.astype(s.data.x_train.dtype)

        def compute(_):
            kv0, k0, f0 = _probe(s.apply, s.params0, x, v, batch_size)
            kv, kt, ft = _probe(s.apply, s.params, x, v, batch_size)
            out = {"ntk": ntk_probe_similarity(kv0, kv), "kdist": kernel_distance(k0, kt)}
            for i, (a, b) in enumerate(zip(f0, ft, strict=True)):
                out[f"cka{i}"] = linear_cka(a, b)
            return {k: jnp.asarray(val, x.dtype) for k, val in out.items()}

        keys = ["ntk", "kdist", *(f"cka{i}" for i in range(c.blocks))]
        nan = lambda _: {k: jnp.full((), jnp.nan, x.dtype) for k in keys}  # noqa: E731
        return jax.lax.cond(jnp.isin(s.step, steps), compute, nan, None)

    return {"batch_after": batch_after, "lazy": lazy}


def _step(c: Config, optimizer: str, setting: str):
    if optimizer == "gn":
        lr = c.gn_lr_full if setting == "full" else c.gn_lr_mini
        return exact_gauss_newton(None, lr, loss=c.loss, rtol=c.rtol, atol=c.atol)
    return optax.adam(c.adam_lr) if optimizer == "adam" else optax.sgd(c.sgd_lr)


def _setting_data(c: Config, data: Dataset, setting: str) -> tuple[Dataset, int | None]:
    if setting == "mini":
        return data, c.batch
    full = Dataset(
        data.x_train[: c.full_batch],
        data.y_train[: c.full_batch],
        data.x_test,
        data.y_test,
        name=data.name,
        num_classes=data.num_classes,
    )
    return full, None


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Train every (setting, optimizer), write results.nc and figures, return the summary."""
    validate(c)
    data = load_data(c)
    model = build_model(c, input_dim(c))
    size = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(model) if hasattr(a, "shape"))
    m_epochs = measure_epochs(c)
    settings, opts = list(c.settings), list(c.optimizers)
    ns, no, ne, nm = len(settings), len(opts), c.epochs + 1, len(m_epochs)
    spe = {
        s: num_batches(c.full_batch, c.full_batch)
        if s == "full"
        else num_batches(c.n_train, c.batch)
        for s in settings
    }
    max_steps = c.epochs * max(spe.values())
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    curves = {k: np.full((ns, no, ne), np.nan) for k in names}
    change = np.full((ns, no, max_steps), np.nan)
    ntk_sim = np.full((ns, no, nm), np.nan)
    kdist = np.full((ns, no, nm), np.nan)
    cka = np.full((ns, no, nm, c.blocks), np.nan)

    for si, s in enumerate(settings):
        sdata, batch = _setting_data(c, data, s)
        steps = c.epochs * spe[s]
        measures = make_measures(c, sdata, batch, m_epochs * spe[s], size)
        for oi, o in enumerate(opts):
            ds = train(
                model,
                _step(c, o, s),
                sdata,
                record_at=list(range(steps + 1)),
                grid=Grid.product(seed=[c.seed]),
                batch=batch,
                loss=c.loss,
                measures=measures,
                keep_initial=True,
                progress=progress,
                description=f"{NAME} {s} {o}",
            )
            assert isinstance(ds, xr.Dataset)
            r = ds.isel(seed=0)
            at_epoch = r.isel(step=np.arange(ne) * spe[s])
            curves["train_loss"][si, oi] = at_epoch.train_loss_full.values
            curves["train_accuracy"][si, oi] = at_epoch.train_accuracy.values
            curves["test_loss"][si, oi] = at_epoch.test_loss.values
            curves["test_accuracy"][si, oi] = at_epoch.test_accuracy.values
            before = r.train_loss.values[1:]  # window of one step: the batch of step t − 1
            change[si, oi, :steps] = relative_change(before, r.batch_after.values[1:])
            at_m = r.isel(step=m_epochs * spe[s])
            ntk_sim[si, oi] = at_m.lazy_ntk.values
            kdist[si, oi] = at_m.lazy_kdist.values
            cka[si, oi] = np.stack([at_m[f"lazy_cka{b}"].values for b in range(c.blocks)], -1)

    ds = xr.Dataset(
        {
            **{k: (("setting", "optimizer", "epoch"), v) for k, v in curves.items()},
            "batch_loss_change": (("setting", "optimizer", "step"), change),
            "ntk_similarity": (("setting", "optimizer", "measure_epoch"), ntk_sim),
            "kernel_distance": (("setting", "optimizer", "measure_epoch"), kdist),
            "cka": (("setting", "optimizer", "measure_epoch", "block"), cka),
            "steps_per_epoch": (("setting",), np.array([spe[s] for s in settings])),
        },
        coords={
            "setting": settings,
            "optimizer": opts,
            "epoch": np.arange(ne),
            "step": np.arange(1, max_steps + 1),
            "measure_epoch": m_epochs,
            "block": np.arange(1, c.blocks + 1),
        },
        attrs={
            "study": NAME,
            "loss": c.loss,
            "batch_loss_change": "(L_after - L_before) / L_before on the batch of that step",
            "kernel_distance": "1 - cos(K0, Kt), full NTK on the probe batch",
            "ntk_similarity": "cos(K0 v, Kt v), fixed random probe v on the probe batch",
        },
    )
    write_dataset(store.results_path, ds)
    summary = summarize(ds, c)
    figures(ds, store, c, summary)
    return summary
