"""The exact Gauss-Newton study's experiment: one engine call per (setting, optimizer).

The runs of one call are a vmapped grid: `seed` (each seed its own RevMLP, built by the
engine from `fold_in(key(seed), 0)`, and its own data order, the engine's
`batch_indices(fold_in(key(seed), 1), n, batch, t)`, shared by every optimizer) and, for Adam
and SGD in the full-batch setting, `eta` (the paper's rate and the `*_grid` rates).
Records at every step give the per-step batch-loss change: the engine's `train_loss` at step
`t` (a window of one step) is the loss on the batch of step `t − 1` before that step, and the
measure `batch_after` the loss on the same batch after it. The train and test sets are
evaluated only at epoch ends (`evaluate_at`). NTK similarity, kernel distance and CKA are
measures that compute only at the measured epochs (a `lax.cond` on the step; NaN elsewhere),
from the run's params and its seed's initial probe quantities (computed once per seed before
the engine call, `initial_probes`). For GN in the full-batch
and rank settings, `gn_fit` = ⟨J·Δθ_raw, ε⟩/(L·‖ε‖²) at initialisation on the whole batch (1
when every half-layer has full row rank, so that J·Δθ_raw = L·ε).
"""

from __future__ import annotations

from typing import Literal, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from lazyrich.data import Dataset, batch_indices, num_batches
from lazyrich.kernels import kernel_distance, linear_cka, ntk_probe_similarity, ntk_vector_product
from lazyrich.models import functional
from lazyrich.optim import exact_gauss_newton, exact_gn_direction, output_error
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, Snapshot, default_devices, get_loss, train

from .claims import judge_claims
from .config import (
    NAME,
    NUM_CLASSES,
    Config,
    RevFactory,
    build_model,
    input_dim,
    load_data,
    seeds,
    validate,
)
from .figures import figures
from .summary import summarize


def relative_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """`(L_after − L_before) / L_before`: negative when the step lowered the batch loss."""
    return (after - before) / before


def setting_epochs(c: Config, setting: str) -> int:
    """Epochs of `setting` (`epochs_mini` for mini when set, else `epochs`)."""
    return c.epochs_mini if setting == "mini" and c.epochs_mini else c.epochs


def measure_epochs(c: Config, epochs: int | None = None, setting: str = "full") -> np.ndarray:
    """Epochs with NTK / CKA measurements: every `measure_every` (mini: `measure_every_mini`
    when set), and the last."""
    e = c.epochs if epochs is None else epochs
    every = c.measure_every_mini if setting == "mini" and c.measure_every_mini else c.measure_every
    return np.unique(np.r_[np.arange(0, e + 1, every), e])


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


def _probe_batch(c: Config, data: Dataset) -> tuple[jax.Array, jax.Array]:
    """The probe batch (the first `c.probe` training examples) and its fixed random vector."""
    probe_x = data.x_train[: c.probe]
    probe_v = jax.random.normal(
        jax.random.fold_in(jax.random.key(c.seed), 2), (c.probe, NUM_CLASSES), probe_x.dtype
    )
    return probe_x, probe_v


def _tangent_batch(size: int, probe_v) -> int:
    # NTK-vector products run `batch_size` at a time; bound their parameter-sized tangents to
    # 5e7 floats per run: the engine vmaps this over a chunk's runs (at 5e8, 9 runs of the
    # evidence preset's full-batch Adam held 17.4 GB)
    return int(max(1, min(probe_v.size, 5e7 // size)))


def initial_probes(c: Config, factory: RevFactory, data: Dataset, size: int) -> dict:
    """Per seed of `c`, the probe quantities at initialisation (`K0 v`, the full `K0`, each
    block's output), computed once per seed instead of at every measurement: the model the
    engine starts a run of seed `s` from is `factory(fold_in(key(s), 0), {})`."""
    x, v = _probe_batch(c, data)
    out = []
    for sd in seeds(c):
        model = factory(jax.random.fold_in(jax.random.key(sd), 0), {})
        params, apply = functional(model)
        out.append(eqx.filter_jit(_probe)(apply, params, x, v, _tangent_batch(size, v)))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *out)
    return {"seeds": jnp.asarray(seeds(c), jnp.int32), "probe": stacked}


def make_measures(
    c: Config,
    data: Dataset,
    batch: int | None,
    m_steps: np.ndarray,
    size: int,
    *,
    initial: dict,
    fit=False,
):
    """`batch_after` (the loss after each step on that step's batch), `lazy` (NTK
    similarity, kernel distance, per-block CKA to initialisation — `initial`, from
    `initial_probes`, per seed — at the steps `m_steps`) and with `fit` `gnfit`
    (⟨J·Δθ_raw, ε⟩/(L·‖ε‖²) on the whole training set, at step 0)."""
    loss_fn = get_loss(c.loss)
    n = int(data.x_train.shape[0])
    probe_x, probe_v = _probe_batch(c, data)
    batch_size = _tangent_batch(size, probe_v)
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
            i = jnp.argmax(initial["seeds"] == s.hp["seed"])
            kv0, k0, f0 = jax.tree.map(lambda a: a[i].astype(x.dtype), initial["probe"])
            kv, kt, ft = _probe(s.apply, s.params, x, v, batch_size)
            out = {"ntk": ntk_probe_similarity(kv0, kv), "kdist": kernel_distance(k0, kt)}
            for i, (a, b) in enumerate(zip(f0, ft, strict=True)):
                out[f"cka{i}"] = linear_cka(a, b)
            return {k: jnp.asarray(val, x.dtype) for k, val in out.items()}

        keys = ["ntk", "kdist", *(f"cka{i}" for i in range(c.blocks))]
        nan = lambda _: {k: jnp.full((), jnp.nan, x.dtype) for k in keys}  # noqa: E731
        return jax.lax.cond(jnp.isin(s.step, steps), compute, nan, None)

    def gnfit(s: Snapshot):
        x, y = s.data.x_train, s.data.y_train

        def compute(_):
            model = s.apply.model(s.params)
            eps = output_error(s.apply(s.params, x), y, c.loss)
            raw = exact_gn_direction(
                model, x, y, loss=c.loss, rtol=c.rtol, atol=c.atol, normalize="none"
            )
            _, jd = jax.jvp(lambda p: s.apply(p, x), (s.params,), (raw,))
            return jnp.vdot(jd, eps) / (c.blocks * jnp.vdot(eps, eps))

        nan = lambda _: jnp.full((), jnp.nan, x.dtype)  # noqa: E731
        return jax.lax.cond(s.step == 0, compute, nan, None).astype(x.dtype)

    out = {"batch_after": batch_after, "lazy": lazy}
    return {**out, "gnfit": gnfit} if fit else out


Normalize = Literal["blocks", "fit", "none"]


def learning_rates(c: Config, optimizer: str, setting: str) -> list[float]:
    """The learning rates of `optimizer` in `setting`: the paper's first, then the grid (full
    batch, Adam/SGD only)."""
    if optimizer == "gn":
        return [c.gn_lr_full if setting != "mini" else c.gn_lr_mini]
    paper, grid = (c.adam_lr, c.adam_grid) if optimizer == "adam" else (c.sgd_lr, c.sgd_grid)
    return [paper, *(g for g in grid if g != paper)] if setting == "full" else [paper]


def _step(c: Config, optimizer: str, setting: str):
    if optimizer == "gn":
        lr = learning_rates(c, "gn", setting)[0]
        norm = cast(Normalize, c.normalize)  # checked in validate
        return exact_gauss_newton(None, lr, loss=c.loss, normalize=norm, rtol=c.rtol, atol=c.atol)
    if optimizer == "adam":
        return lambda hp: optax.adam(hp["eta"])
    return lambda hp: optax.sgd(hp["eta"])


def _setting_data(c: Config, data: Dataset, setting: str) -> tuple[Dataset, int | None]:
    if setting == "mini":
        return data, c.batch
    n = c.full_batch if setting == "full" else c.rank_batch
    full = Dataset(
        data.x_train[:n],
        data.y_train[:n],
        data.x_test,
        data.y_test,
        name=data.name,
        num_classes=data.num_classes,
    )
    return full, None


ORDER = ("gn", "adam", "sgd", "adam_paper", "sgd_paper", "gn_relu")


def _calls(c: Config) -> list[tuple[str, str]]:
    """(setting, optimizer) engine calls; the rank setting runs GN with both first blocks."""
    out = []
    for s in c.settings:
        opts = ["gn", "gn_relu"] if s == "rank" else list(c.optimizers)
        out += [(s, o) for o in opts]
    return out


def tuned_index(final: np.ndarray) -> int:
    """The tuned learning rate: the lowest seed-mean final train loss (`final`: (seed, eta);
    a diverged or non-finite run counts as +inf; ties go to the first, the paper's)."""
    m = np.where(np.isfinite(final), final, np.inf).mean(0)
    return int(np.argmin(m))


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Train every (setting, optimizer), write results.nc and figures, return the summary."""
    validate(c)
    data = load_data(c)
    d = input_dim(c)
    model = build_model(c, d)
    size = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(model) if hasattr(a, "shape"))
    settings: list[str] = list(c.settings)
    calls = _calls(c)
    present = {o for _, o in calls}
    if "full" in settings:
        present |= {f"{o}_paper" for o in ("adam", "sgd") if o in c.optimizers}
    opts = [o for o in ORDER if o in present]
    sd = seeds(c)
    ep = {s: setting_epochs(c, s) for s in settings}
    me_all = np.unique(np.concatenate([measure_epochs(c, e, s) for s, e in ep.items()]))
    spe = {
        s: num_batches(c.n_train, c.batch) if s == "mini" else 1 for s in settings
    }  # full and rank: one step per epoch
    ns, no, nk, ne, nm = len(settings), len(opts), len(sd), max(ep.values()) + 1, len(me_all)
    max_steps = max(ep[s] * spe[s] for s in settings)
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    curves = {k: nan(ns, no, nk, ne) for k in names}
    change, lrs = nan(ns, no, nk, max_steps), nan(ns, no)
    ntk_sim, kdist, cka = nan(ns, no, nk, nm), nan(ns, no, nk, nm), nan(ns, no, nk, nm, c.blocks)
    gn_fit = nan(ns, no, nk)
    tune_opts = [o for o in ("adam", "sgd") if o in c.optimizers and "full" in settings]
    n_lr = max([len(learning_rates(c, o, "full")) for o in tune_opts] or [1])
    tune_lr, tune_final = nan(max(len(tune_opts), 1), n_lr), nan(max(len(tune_opts), 1), n_lr, nk)

    initial: dict = {}  # probe quantities at initialisation, per first block and probe size
    for s, o in calls:
        si = settings.index(s)
        sdata, batch = _setting_data(c, data, s)
        steps, m_ep = ep[s] * spe[s], measure_epochs(c, ep[s], s)
        fit = o.startswith("gn") and s != "mini"
        factory = RevFactory(d, c.blocks, c.hidden, c.sigma, linear_first=o != "gn_relu")
        key = (factory.linear_first, min(c.probe, int(sdata.x_train.shape[0])))
        if key not in initial:  # the probe batch is a prefix of every setting's training set
            initial[key] = initial_probes(c, factory, sdata, size)
        measures = make_measures(
            c, sdata, batch, m_ep * spe[s], size, initial=initial[key], fit=fit
        )
        rates = learning_rates(c, "gn" if o == "gn_relu" else o, s)
        axes: dict = {"seed": sd} if o.startswith("gn") else {"seed": sd, "eta": rates}
        ds = train(
            factory,
            _step(c, "gn" if o == "gn_relu" else o, s),
            sdata,
            record_at=list(range(steps + 1)),
            evaluate_at=[e * spe[s] for e in range(ep[s] + 1)],
            grid=Grid.product(**axes),
            batch=batch,
            loss=c.loss,
            measures=measures,
            progress=progress,
            devices=default_devices(devices),
            description=f"{NAME} {s} {o}",
        )
        assert isinstance(ds, xr.Dataset)
        targets = [(o, 0)]
        if "eta" in ds.dims:
            final = ds.train_loss_full.isel(step=-1).values  # (seed, eta)
            k = tuned_index(final)
            if s == "full":
                ti = tune_opts.index(o)
                tune_lr[ti, : len(rates)] = rates
                tune_final[ti, : len(rates)] = final.T
                targets = [(o, k), (f"{o}_paper", 0)]
        for name, k in targets:
            oi = opts.index(name)
            r = ds.isel(eta=k) if "eta" in ds.dims else ds
            lrs[si, oi] = rates[k]
            at_epoch = r.isel(step=np.arange(ep[s] + 1) * spe[s])
            sl = (si, oi, slice(None), slice(0, ep[s] + 1))
            curves["train_loss"][sl] = at_epoch.train_loss_full.values
            curves["train_accuracy"][sl] = at_epoch.train_accuracy.values
            curves["test_loss"][sl] = at_epoch.test_loss.values
            curves["test_accuracy"][sl] = at_epoch.test_accuracy.values
            before = r.train_loss.values[:, 1:]  # window of one step: the batch of step t − 1
            change[si, oi, :, :steps] = relative_change(before, r.batch_after.values[:, 1:])
            at_m = r.isel(step=m_ep * spe[s])
            mi = np.searchsorted(me_all, m_ep)
            ntk_sim[si, oi][:, mi] = at_m.lazy_ntk.values
            kdist[si, oi][:, mi] = at_m.lazy_kdist.values
            cka[si, oi][:, mi] = np.stack(
                [at_m[f"lazy_cka{b}"].values for b in range(c.blocks)], -1
            )
            if fit:
                gn_fit[si, oi] = r.gnfit.isel(step=0).values

    ds = xr.Dataset(
        {
            **{k: (("setting", "optimizer", "seed", "epoch"), v) for k, v in curves.items()},
            "batch_loss_change": (("setting", "optimizer", "seed", "step"), change),
            "ntk_similarity": (("setting", "optimizer", "seed", "measure_epoch"), ntk_sim),
            "kernel_distance": (("setting", "optimizer", "seed", "measure_epoch"), kdist),
            "cka": (("setting", "optimizer", "seed", "measure_epoch", "block"), cka),
            "gn_fit": (("setting", "optimizer", "seed"), gn_fit),
            "lr": (("setting", "optimizer"), lrs),
            "tune_lr": (("tune_optimizer", "tune_index"), tune_lr),
            "tune_final_train_loss": (("tune_optimizer", "tune_index", "seed"), tune_final),
            "steps_per_epoch": (("setting",), np.array([spe[s] for s in settings])),
            "epochs": (("setting",), np.array([ep[s] for s in settings])),
        },
        coords={
            "setting": settings,
            "optimizer": opts,
            "seed": sd,
            "epoch": np.arange(ne),
            "step": np.arange(1, max_steps + 1),
            "measure_epoch": me_all,
            "block": np.arange(1, c.blocks + 1),
            "tune_optimizer": tune_opts or ["none"],
            "tune_index": np.arange(n_lr),
        },
        attrs={
            "study": NAME,
            "loss": c.loss,
            "normalize": c.normalize,
            "batch_loss_change": "(L_after - L_before) / L_before on the batch of that step",
            "kernel_distance": "1 - cos(K0, Kt), full NTK on the probe batch",
            "ntk_similarity": "cos(K0 v, Kt v), fixed random probe v on the probe batch",
            "gn_fit": "<J dtheta_raw, eps> / (L |eps|^2) at initialisation (GN, full batch)",
            "optimizer": "full batch: adam/sgd tuned on the grid, *_paper the paper's rates",
        },
    )
    write_dataset(store.results_path, ds)
    summary = summarize(ds, c)
    summary["claims"] = judge_claims(ds, summary, c)
    figures(ds, store, c, summary)
    return summary
