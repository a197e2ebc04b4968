"""SGD learns functions of increasing complexity (PAPERS.md §5, Nakkiran et al. 2019).

Binary tasks (mnist1d, MNIST and CIFAR-10 with label = class > 4, and a 2-D "sinusoidal ball"
with label noise), an MLP and the CNN of §5, plain SGD towards zero training error. L is the best
linear classifier on the same training data (logistic regression to convergence). At log-spaced
early steps and at every epoch end the network's hard test predictions F_t give the plug-in
I(F_t; Y), μ_Y(F_t; L) = I(F_t; Y) − I(F_t; Y | L) and I(L; Y | F_t), with I(L; Y) as reference.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from lazyrich import functional
from lazyrich.data import Dataset, load_cifar10, load_mnist, mnist1d, num_batches, resolve_data_dir
from lazyrich.errors import require
from lazyrich.measures import (
    conditional_mutual_information,
    fit_logistic,
    joint_counts,
    mutual_information,
)
from lazyrich.models import MLP, Conv, Dense
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import fit, log_steps

from . import _plots

NAME = "complexity"
TITLE = "SGD learns functions of increasing complexity"
DESCRIPTION = (
    "Binary tasks — mnist1d and MNIST / CIFAR-10 with label = class > 4, and a 2-D 'sinusoidal "
    "ball' (x uniform on [−1, 1]², label 1 inside ‖x − c‖ < r0·(1 + a·sin(kθ)), c = (0.3, 0.3), "
    "r0 = 0.8, a = 0.25, k = 6, every label flipped with probability 0.1 in train and test) — "
    "learned by a ReLU MLP and the CNN of Nakkiran et al. (4 convolutions of 32 channels, average "
    "pooling after the 2nd and 4th, two dense layers of 2000; the quick preset shrinks it to 16 "
    "and 128), both in standard parameterization with He initialisation, trained with "
    "plain SGD until zero training error or a step cap. L is logistic regression trained to "
    "convergence on the same data. On the test set, from hard predictions: I(F_t;Y), "
    "μ(F_t;L) = I(F_t;Y) − I(F_t;Y|L) (how much of F_t's information L explains) and "
    "I(L;Y|F_t) (≈ 0 when L is retained), in bits. T0 is the first recorded step where "
    "μ < 0.9·I(F_t;Y), counting only steps where I(F_t;Y) ≥ t0_min_info·I(L;Y) (at chance level "
    "the ratio is noise); null when that never happens. retention = μ_final / I(L;Y). The paper "
    "predicts μ ≈ I(F_t;Y) until F_t's accuracy passes L's and retention close to 1 after."
)

TASKS = ("mnist1d", "ball", "mnist", "cifar10")
FILE_TASKS = ("mnist", "cifar10")
NETWORKS = ("mlp", "cnn")

# The sinusoidal ball (see `ball`).
BALL_CENTRE = (0.3, 0.3)
BALL_RADIUS = 0.8
BALL_AMPLITUDE = 0.25
BALL_FREQUENCY = 6


@dataclass(frozen=True)
class Config:
    """Options of the complexity study."""

    tasks: tuple[str, ...] = ("mnist1d", "ball")
    """Binary tasks: mnist1d, ball, mnist, cifar10 (the last two from local files)."""
    networks: tuple[str, ...] = ("mlp", "cnn")
    """Networks: mlp, cnn (the CNN runs only on sequence/image tasks, not on the 2-D ball)."""
    n_train: int = 4000
    """Training examples per task (MNIST/CIFAR: the first n_train, at most what the files hold)."""
    n_test: int = 1000
    """Test examples per task (the information measures are estimated on these)."""
    ball_noise: float = 0.1
    """Probability that a ball label is flipped (train and test alike)."""
    width: int = 256
    """MLP hidden width."""
    depth: int = 2
    """MLP hidden layers."""
    cnn_channels: int = 16
    """CNN channels of each of the 4 convolutions."""
    cnn_dense: int = 128
    """Width of each of the CNN's two dense layers."""
    steps: int = 2000
    """Maximum SGD steps per run (training stops earlier at zero training error)."""
    batch: int = 32
    """SGD batch size."""
    lr: float = 0.1
    """SGD learning rate (plain SGD, no momentum, no weight decay)."""
    records: int = 20
    """Log-spaced recording steps (besides one at the end of every epoch)."""
    stop_train_error: float = 0.0
    """Stop at the first record whose training error is <= this (0: zero training error)."""
    t0_min_info: float = 0.5
    """T0 counts only steps with I(F_t;Y) >= t0_min_info·I(L;Y)."""
    linear_steps: int = 1000
    """Maximum L-BFGS iterations of the linear classifier L."""
    seed: int = 0
    """Seed of the data, the initialisation and the batch order."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        tasks=("mnist1d", "ball", "mnist", "cifar10"),
        n_train=60_000,
        n_test=10_000,
        width=1024,
        depth=2,
        cnn_channels=32,
        cnn_dense=2000,
        steps=100_000,
        batch=64,
        lr=0.01,
        records=60,
        linear_steps=5000,
    ),
}


# ------------------------------------------------------------------------------ data


def ball_labels(x: Float[Array, "n 2"]) -> Int[Array, " n"]:
    """Clean ball label: 1 iff ‖x − c‖ < r0·(1 + a·sin(k·θ)), θ the angle of x − c."""
    z = x - jnp.asarray(BALL_CENTRE, x.dtype)
    r = jnp.sqrt(jnp.sum(z**2, axis=1))
    theta = jnp.arctan2(z[:, 1], z[:, 0])
    boundary = BALL_RADIUS * (1.0 + BALL_AMPLITUDE * jnp.sin(BALL_FREQUENCY * theta))
    return (r < boundary).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=0)
def ball(n: int, *, noise: float, key: PRNGKeyArray) -> tuple[Array, Array, Array]:
    """`n` draws of the sinusoidal ball with label noise.

    x is uniform on the square [−1, 1]²; the clean label is `ball_labels(x)` (a wavy disc of
    radius r0 = 0.8 around c = (0.3, 0.3), amplitude a = 0.25, k = 6 lobes; about 47% ones, and
    the best linear classifier gets about 78% of clean labels right); each label is then flipped
    independently with probability `noise`.

    **Returns:** `(x (n, 2) float, y (n,) int32 noisy labels, flipped (n,) bool)`.
    """
    kx, kf = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 2), minval=-1.0, maxval=1.0)
    clean = ball_labels(x)
    flipped = jax.random.bernoulli(kf, noise, (n,))
    return x, jnp.where(flipped, 1 - clean, clean).astype(jnp.int32), flipped


def _data_env() -> str:
    return os.environ.get("LAZYRICH_DATA", "")


@functools.lru_cache(maxsize=4)
def _load(task: str, n_train: int, n_test: int, noise: float, seed: int, env: str) -> Dataset:
    """The binary dataset of `task` (cached, so validate() and run() load files once)."""
    del env  # part of the cache key only: a different data directory reloads
    if task == "mnist1d":
        return mnist1d(n_train, n_test, seed=seed).binary(4)
    if task == "ball":
        x, y, _ = ball(n_train + n_test, noise=noise, key=jax.random.key(seed))
        return Dataset(
            x[:n_train], y[:n_train], x[n_train:], y[n_train:], name="ball", num_classes=2
        )
    full = load_mnist() if task == "mnist" else load_cifar10()
    return full.subset(min(n_train, full.n_train), min(n_test, full.n_test)).binary(4)


def load_task(c: Config, task: str) -> Dataset:
    """The binary train/test split of `task` under config `c`."""
    return _load(task, c.n_train, c.n_test, c.ball_noise, c.seed, _data_env())


# ------------------------------------------------------------------------------ networks


def _pool(x: Array) -> Array:
    """2× average pooling over the spatial axes (channel-last); odd sizes drop the last row."""
    ndim = x.ndim - 2
    window = (1,) + (2,) * ndim + (1,)
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") / 2**ndim


class PaperCNN(eqx.Module):
    """The CNN of PAPERS.md §5: 4 'SAME' 3-wide convolutions of `channels` (ReLU), 2× average
    pooling after the 2nd and the 4th, two dense ReLU layers of `dense`, a linear readout.
    Standard parameterization with biases. Inputs `(n, L)`, `(n, L, C)` or `(n, H, W, C)`."""

    convs: tuple[Conv, ...]
    dense: tuple[Dense, ...]

    def __init__(self, in_shape: tuple[int, ...], channels: int, dense: int, out_dim: int, *, key):
        in_shape = in_shape + (1,) if len(in_shape) == 1 else in_shape
        ndim = len(in_shape) - 1
        keys = jax.random.split(key, 7)
        std: dict[str, Any] = dict(parameterization="standard", use_bias=True, sigma_b=0.0)
        conv = functools.partial(Conv, kernel=3, ndim=ndim, sigma_w=2**0.5, **std)
        hidden = functools.partial(Dense, sigma_w=2**0.5, **std)
        cins = (in_shape[-1], channels, channels, channels)
        self.convs = tuple(conv(ci, channels, key=k) for ci, k in zip(cins, keys[:4], strict=True))
        flat = channels * math.prod(s // 4 for s in in_shape[:-1])
        self.dense = (
            hidden(flat, dense, key=keys[4]),
            hidden(dense, dense, key=keys[5]),
            Dense(dense, out_dim, readout=True, key=keys[6], **std),
        )

    def __call__(self, x: Array) -> Array:
        h = x[..., None] if x.ndim == 2 else x
        for i, conv in enumerate(self.convs):
            h = jax.nn.relu(conv(h))
            if i in (1, 3):
                h = _pool(h)
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(self.dense[0](h))
        h = jax.nn.relu(self.dense[1](h))
        return self.dense[2](h)


def make_network(c: Config, network: str, data: Dataset, *, key: PRNGKeyArray) -> MLP | PaperCNN:
    """The MLP (standard parameterization, ReLU, biases) or the paper's CNN for `data`."""
    if network == "mlp":
        d = math.prod(data.input_shape)
        return MLP(d, c.width, c.depth, 2, parameterization="standard", use_bias=True,
                   sigma_w=2**0.5, sigma_b=0.0, key=key)  # fmt: skip
    return PaperCNN(data.input_shape, c.cnn_channels, c.cnn_dense, 2, key=key)


def cnn_applies(data: Dataset) -> bool:
    """The CNN needs a sequence or an image of spatial size >= 4 (not the 2-D ball's points)."""
    shape = data.input_shape
    spatial = shape if len(shape) == 1 else shape[:-1]
    return len(shape) >= 1 and data.name != "ball" and all(s >= 4 for s in spatial)


# ------------------------------------------------------------------------------ validation


def validate(c: Config) -> None:
    """Check every option (and that the files of MNIST / CIFAR-10 tasks exist) before writing."""
    for name in ("n_train", "n_test", "width", "depth", "cnn_channels", "cnn_dense", "steps",
                 "batch", "records", "linear_steps"):  # fmt: skip
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(len(c.tasks) >= 1, f"--tasks needs at least one of: {', '.join(TASKS)}")
    for t in c.tasks:
        require(t in TASKS, f"unknown task {t!r}: choose --tasks from {', '.join(TASKS)}")
    require(len(set(c.tasks)) == len(c.tasks), f"--tasks lists a task twice: {' '.join(c.tasks)}")
    require(len(c.networks) >= 1, f"--networks needs at least one of: {', '.join(NETWORKS)}")
    for n in c.networks:
        require(n in NETWORKS, f"unknown network {n!r}: choose --networks from mlp, cnn")
    require(
        len(set(c.networks)) == len(c.networks),
        f"--networks lists a network twice: {' '.join(c.networks)}",
    )
    require(c.batch <= c.n_train, f"--batch {c.batch} exceeds --n-train {c.n_train}")
    require(math.isfinite(c.lr) and c.lr > 0, f"--lr must be a finite number > 0, got {c.lr}")
    require(0.0 <= c.ball_noise < 0.5, f"--ball-noise must be in [0, 0.5), got {c.ball_noise}")
    require(
        0.0 <= c.stop_train_error < 1.0,
        f"--stop-train-error must be in [0, 1), got {c.stop_train_error}",
    )
    require(0.0 <= c.t0_min_info <= 1.0, f"--t0-min-info must be in [0, 1], got {c.t0_min_info}")
    if any(t in FILE_TASKS for t in c.tasks):
        resolve_data_dir()  # one line if no data directory is given
        for t in c.tasks:
            if t in FILE_TASKS:
                load_task(c, t)  # one-line DataError for a missing or corrupt file (cached)


# ------------------------------------------------------------------------------ one run


class _ZeroTrainError(Exception):
    """Raised from fit's callback to stop training once the training error target is met."""


def _predict(apply, params, x: Array, chunk: int = 4096) -> Array:
    """Hard labels `argmax apply(params, x)` in chunks of `chunk` rows."""
    return jnp.concatenate(
        [_argmax(apply, params, x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    )


MEASURES = ("test_accuracy", "I_FY", "mu", "I_LY_given_F", "I_FY_given_L")


@jax.jit
def information(f: Int[Array, " n"], l: Int[Array, " n"], y: Int[Array, " n"]) -> Array:  # noqa: E741
    """`MEASURES` of binary hard labels F (network), L (linear), Y (truth), from one count table:
    accuracy of F, I(F;Y), μ = I(F;Y) − I(F;Y|L), I(L;Y|F), I(F;Y|L) (bits, plug-in)."""
    c = joint_counts(f, y, l, num_values=2)  # axes (F, Y, L)
    i_fy = mutual_information(c.sum(2))
    i_fy_l = conditional_mutual_information(c)
    i_ly_f = conditional_mutual_information(jnp.transpose(c, (2, 1, 0)))  # axes (L, Y, F)
    return jnp.stack([jnp.mean(f == y), i_fy, i_fy - i_fy_l, i_ly_f, i_fy_l])


@jax.jit
def _linear_information(l: Int[Array, " n"], y: Int[Array, " n"]) -> Array:  # noqa: E741
    """(accuracy of L, I(L;Y))."""
    return jnp.stack([jnp.mean(l == y), mutual_information(joint_counts(l, y, num_values=2))])


_accuracy = jax.jit(lambda f, y: jnp.mean(f == y))


@jax.jit(static_argnums=0)
def _argmax(apply, params, x):
    return jnp.argmax(apply(params, x), -1).astype(jnp.int32)


def record_steps(c: Config, n_train: int) -> np.ndarray:
    """Log-spaced steps up to `c.steps`, every epoch end, and `c.steps` itself."""
    nb = num_batches(n_train, c.batch)
    epochs = np.arange(nb, c.steps + 1, nb, dtype=np.int64)
    return np.unique(np.concatenate([log_steps(c.steps, c.records), epochs, [c.steps]]))


def train_and_measure(
    c: Config,
    data: Dataset,
    task: str,
    network: str,
    linear_test: Array,
    *,
    key: PRNGKeyArray,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Train `network` on `data` with plain SGD; at each record measure F_t against L and Y."""
    init_key, shuffle_key = jax.random.split(key)
    params, apply = functional(make_network(c, network, data, key=init_key))
    rows: list[dict[str, float]] = []
    y_test, y_train = data.y_test.astype(jnp.int32), data.y_train.astype(jnp.int32)
    nb = num_batches(data.n_train, c.batch)

    def measure(step: int, p) -> dict[str, float]:
        values = information(_predict(apply, p, data.x_test), linear_test, y_test)
        train_acc = float(_accuracy(_predict(apply, p, data.x_train), y_train))
        row = {"step": float(step), "epoch": step / nb, "train_accuracy": train_acc}
        row.update(zip(MEASURES, np.asarray(values).tolist(), strict=True))
        rows.append(row)
        if 1.0 - train_acc <= c.stop_train_error:
            raise _ZeroTrainError
        return {}

    try:
        fit(apply, params, data, optax.sgd(c.lr), batch=c.batch,
            record_at=record_steps(c, data.n_train).tolist(), key=shuffle_key, loss="xent",
            callback=measure, progress=progress, description=f"{task}/{network}")  # fmt: skip
    except _ZeroTrainError:
        pass
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def find_t0(i_fy, mu_, i_ly: float, min_info: float) -> int | None:
    """Index of the first record with μ < 0.9·I(F;Y) and I(F;Y) >= min_info·I(L;Y), or None."""
    ok = (mu_ < 0.9 * i_fy) & (i_fy >= min_info * i_ly) & (i_fy > 0)
    hits = np.nonzero(ok)[0]
    return int(hits[0]) if hits.size else None


def summarize(h: dict[str, np.ndarray], i_ly: float, lin_test: float, lin_train: float, c):
    """The headline numbers of one task × network run."""
    t0 = find_t0(h["I_FY"], h["mu"], i_ly, c.t0_min_info)
    reached = np.nonzero(1.0 - h["train_accuracy"] <= c.stop_train_error)[0]
    mu_final = float(h["mu"][-1])
    return {
        "I_LY": i_ly,
        "T0": None if t0 is None else int(h["step"][t0]),
        "mu_at_T0": None if t0 is None else float(h["mu"][t0]),
        "I_FY_at_T0": None if t0 is None else float(h["I_FY"][t0]),
        "test_accuracy_at_T0": None if t0 is None else float(h["test_accuracy"][t0]),
        "mu_final": mu_final,
        "I_FY_final": float(h["I_FY"][-1]),
        "I_LY_given_F_final": float(h["I_LY_given_F"][-1]),
        "retention": mu_final / i_ly if i_ly > 1e-9 else None,
        "test_accuracy_final": float(h["test_accuracy"][-1]),
        "train_accuracy_final": float(h["train_accuracy"][-1]),
        "linear_test_accuracy": lin_test,
        "linear_train_accuracy": lin_train,
        "zero_error_step": int(h["step"][reached[0]]) if reached.size else None,
        "steps_run": int(h["step"][-1]),
    }


# ------------------------------------------------------------------------------ the study


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Train every task × network, write results.nc and figures into `store`, return the summary."""
    validate(c)
    summary: dict = {}
    histories: dict[str, dict[str, np.ndarray]] = {}
    per_run: dict[str, dict] = {}
    skipped = []
    for ti, task in enumerate(c.tasks):
        data = load_task(c, task)
        lin, predict_l = fit_logistic(data.x_train, data.y_train, num_classes=2,
                                      steps=c.linear_steps)  # fmt: skip
        predict_l = jax.jit(predict_l)
        l_test = predict_l(data.x_test)
        lin_test, i_ly = np.asarray(_linear_information(l_test, data.y_test)).tolist()
        lin_train = float(_accuracy(predict_l(data.x_train), data.y_train))
        for ni, network in enumerate(c.networks):
            if network == "cnn" and not cnn_applies(data):
                skipped.append(f"{task}/cnn: inputs {data.input_shape} are not a sequence/image")
                continue
            key = jax.random.fold_in(jax.random.key(c.seed), 100 * ti + ni)
            h = train_and_measure(c, data, task, network, l_test, key=key, progress=progress)
            name = f"{task}/{network}"
            histories[name] = h
            per_run[name] = {"I_LY": i_ly, "linear_test_accuracy": lin_test}
            s = summarize(h, i_ly, lin_test, lin_train, c)
            s["linear_grad_norm"] = float(lin["grad_norm"])  # ~0: L is fitted to convergence
            s["linear_iterations"] = int(lin["iterations"])
            summary.setdefault(task, {})[network] = s
    if skipped:
        summary["skipped"] = skipped
    summary["T0_rule"] = (
        f"first recorded step with mu < 0.9*I(F;Y) and I(F;Y) >= {c.t0_min_info}*I(L;Y); "
        "null: never"
    )
    ds = _dataset(histories, per_run, summary)
    write_dataset(store.results_path, ds)
    _figures(ds, store)
    return summary


def _dataset(histories, per_run, summary) -> xr.Dataset:
    names = list(histories)
    length = max(len(h["step"]) for h in histories.values())
    pad = lambda a: np.concatenate([a, np.full(length - len(a), np.nan)])  # noqa: E731
    keys = ("step", "epoch", "test_accuracy", "train_accuracy", "I_FY", "mu", "I_LY_given_F",
            "I_FY_given_L")  # fmt: skip
    dv: dict[str, tuple[tuple[str, ...], np.ndarray]]
    dv = {k: (("run", "record"), np.stack([pad(histories[n][k]) for n in names])) for k in keys}
    for k in ("I_LY", "linear_test_accuracy"):
        dv[k] = (("run",), np.array([per_run[n][k] for n in names]))
    t0 = [summary[n.split("/")[0]][n.split("/")[1]]["T0"] for n in names]
    dv["T0"] = (("run",), np.array([np.nan if t is None else t for t in t0], float))
    return xr.Dataset(
        dv,
        coords={"run": names, "record": np.arange(length)},
        attrs={"study": NAME, "units": "bits (log base 2), plug-in estimates on the test set"},
    )


def _figures(ds: xr.Dataset, store: StudyDir) -> None:
    for i, name in enumerate(ds.run.values):
        r = ds.isel(run=i)
        ok = np.isfinite(r.step.values) & (r.step.values > 0)
        steps = r.step.values[ok]
        slug = str(name).replace("/", "_")
        fig, ax = _plots.figure()
        ax.plot(steps, r.I_FY.values[ok], "C0-", label="I(F_t; Y)")
        ax.plot(steps, r.mu.values[ok], "C1-", label="μ(F_t; L)")
        ax.plot(steps, r.I_LY_given_F.values[ok], "C2:", label="I(L; Y | F_t)")
        ax.axhline(float(r.I_LY), color="k", ls="--", lw=1, label="I(L; Y)")
        if np.isfinite(float(r.T0)):
            ax.axvline(float(r.T0), color="0.5", ls=":", lw=1, label="T0")
        ax.set_xscale("log")
        ax.set(xlabel="SGD step", ylabel="bits", title=f"{name}: information on the test set")
        ax.legend(fontsize=8)
        _plots.save(fig, store.figure(f"info_{slug}"))

        fig, ax = _plots.figure()
        ax.plot(steps, r.test_accuracy.values[ok], "C0-", label="F_t test")
        ax.plot(steps, r.train_accuracy.values[ok], "C0:", label="F_t train")
        ax.axhline(float(r.linear_test_accuracy), color="k", ls="--", lw=1, label="L test")
        ax.set_xscale("log")
        ax.set(xlabel="SGD step", ylabel="accuracy", title=f"{name}: accuracy of F_t and L")
        ax.legend(fontsize=8)
        _plots.save(fig, store.figure(f"accuracy_{slug}"))
