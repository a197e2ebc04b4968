"""The lazy-limit study: finite-width centred μP MLPs against closed-form kernel dynamics.

For each dataset and width, one initialisation of a centred μP MLP `f = (net − net₀)/γ` is
trained by full-batch gradient descent on MSE at every γ (the γ axis is one `jax.vmap`), and its
train and test loss curves are compared with the closed-form kernel-regression dynamics
(`lazyrich.theory.kernel_gd_predictions`, exact discrete GD) for two kernels: the empirical NTK
of the network at initialisation, and the infinite-width NTK of its twin (`infinite_kernels`).

Conventions, as in `lazyrich.theory._lazy`: loss `L = 1/(2P) Σ (f − y)²` (one output), step
`θ ← θ − η ∇L` with the μP learning rate `η = η0 · N`, and the theory is fed the unscaled
network's kernel `Θ_net` with `eta = effective_rate(η0, gamma=γ, lr_multiplier=N) = η0 N/γ²`.
`η0(γ) = lr · P/λ_max(N Θ_mup^∞) · s(γ)` with `s = γ²` for γ ≤ 1 and `γ^(2/L)` above (the
lazy and ultra-rich learning-rate scalings of PAPERS.md §1), so for γ ≤ 1 the infinite-width
theory is the same curve at every γ: its fastest mode contracts by `1 − lr` per step.

The frozen `net₀` of the centred model only ever sees the fixed train and test inputs, so its
outputs there are computed once; `tests/test_lazy_limit.py` checks the result against
`lazyrich.models.scaled`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from lazyrich.data import load_dataset
from lazyrich.errors import require
from lazyrich.kernels import empirical_ntk, infinite_kernels, kernel_distance
from lazyrich.models import MLP, functional
from lazyrich.results import StudyDir, write_dataset
from lazyrich.theory import effective_rate, kernel_gd_predictions
from lazyrich.train import log_steps

from ._lazy_limit_figures import figures, max_gap

NAME = "lazy-limit"
TITLE = "The lazy limit: finite-width networks against closed-form NTK dynamics"
DESCRIPTION = (
    "Centred μP MLPs f = (net − net₀)/γ (no biases, one output) at several widths N are trained "
    "by full-batch gradient descent on MSE, L = 1/(2P) Σ (f − y)², with the μP learning rate "
    "η0·N, from one initialisation per width, at γ on a log grid. The measured train and test "
    "losses are compared at log-spaced steps with the exact discrete-GD kernel-regression "
    "prediction for (a) the infinite-width NTK (neural-tangents twin, μP factor 1/N) and (b) the "
    "empirical NTK at initialisation. η0 = lr·P/λ_max(N·Θ∞)·γ² for γ ≤ 1 (so every lazy run "
    "follows the same theory curve) and ·γ^(2/L) for γ > 1. theory_gap is the largest relative "
    "error |measured − predicted|/predicted over the recorded steps and over train and test loss "
    "(empirical-NTK prediction); theory_gap_infinite the same for the infinite-width prediction. "
    "kernel_distance_final is 1 − cos(K0, KT) of the empirical NTK on the first `probe` training "
    "points at init and after the last step (also recorded at a few steps in between). Datasets: "
    "'teacher' (a random ReLU MLP teacher on Gaussian inputs, targets of variance 1) and "
    "'mnist1d' with the scalar target +1 for class > 4, else −1. Runs with γ below "
    "float64_below are in float64. Theory expects the empirical-NTK gap below 5% at γ ≤ 1e-2 and "
    "growing with γ, the infinite-width gap shrinking with width, and the kernel distance "
    "growing with γ; the summary reports which of these the run shows."
)

DATASETS = ("teacher", "mnist1d")
ACTIVATIONS = ("relu", "erf", "tanh", "linear")
FLOAT64 = ("auto", "always", "never")
THRESHOLD = 1e6  # a train loss above this (or non-finite) freezes the run as diverged


@dataclass(frozen=True)
class Config:
    """Options of the lazy-limit study."""

    datasets: tuple[str, ...] = DATASETS
    """Datasets: teacher (synthetic regression) and/or mnist1d (class > 4 as ±1)."""
    widths: tuple[int, ...] = (64, 256, 512)
    """Hidden widths N of the MLPs."""
    depth: int = 2
    """Hidden layers L (L + 1 weight matrices)."""
    activation: str = "relu"
    """Activation: relu, erf, tanh (infinite-width kernel by quadrature) or linear."""
    gamma_min: float = 1e-3
    """Smallest γ."""
    gamma_max: float = 10.0
    """Largest γ."""
    gamma_per_decade: float = 1.0
    """γ grid points per decade (log-spaced, both ends included)."""
    n_train: int = 128
    """Training points P (full batch)."""
    n_test: int = 128
    """Test points."""
    teacher_dim: int = 32
    """Input dimension of the teacher task."""
    steps: int = 200
    """Gradient-descent steps."""
    records: int = 16
    """Log-spaced steps at which losses are recorded (plus step 0)."""
    kernel_records: int = 3
    """Steps (log-spaced among the recorded ones, the last included) at which the empirical NTK
    on the probe points is compared with its value at init."""
    probe: int = 32
    """Probe points for the kernel distance: the first PROBE training points."""
    lr: float = 0.25
    """Learning rate in units of the lazy stability scale: for γ ≤ 1 the infinite-width theory's
    fastest mode contracts by 1 − lr per step (stable below 2)."""
    float64: str = "auto"
    """Precision: auto (γ < float64_below in float64, the rest float32), always or never."""
    float64_below: float = 1e-2
    """With --float64 auto, γ below this runs in float64."""
    chunk_size: int = 0
    """Examples per block of the empirical NTK at init (0: one block; bounds memory)."""
    seed: int = 0
    """Seed of the initialisation and of the data."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        widths=(256, 1024, 4096),
        depth=3,
        gamma_per_decade=2.0,
        n_train=512,
        n_test=512,
        steps=2000,
        records=30,
        kernel_records=5,
        probe=64,
        chunk_size=64,
    ),
}


# --------------------------------------------------------------------------- config and data


def gamma_grid(c: Config) -> np.ndarray:
    """The γ values: `gamma_per_decade` per decade from gamma_min to gamma_max."""
    lo, hi = math.log10(c.gamma_min), math.log10(c.gamma_max)
    n = max(1, int(round((hi - lo) * c.gamma_per_decade)) + 1)
    return np.logspace(lo, hi, n) if n > 1 else np.array([c.gamma_min])


def validate(c: Config) -> None:
    """Check every option before anything is written; one-line ConfigError otherwise."""
    require(len(c.datasets) >= 1, "no dataset given: pass --datasets teacher mnist1d")
    for d in c.datasets:
        require(d in DATASETS, f"unknown dataset {d!r}: choose from {', '.join(DATASETS)}")
    require(len(set(c.datasets)) == len(c.datasets), f"--datasets repeats one: {c.datasets}")
    require(len(c.widths) >= 1, "no width given: pass --widths 64 256 1024")
    for w in c.widths:
        require(w >= 1, f"--widths must all be >= 1, got {w}")
    require(len(set(c.widths)) == len(c.widths), f"--widths repeats one: {c.widths}")
    for name in ("depth", "n_train", "n_test", "teacher_dim", "steps", "records"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(c.kernel_records >= 1, f"--kernel-records must be >= 1, got {c.kernel_records}")
    require(
        1 <= c.probe <= c.n_train,
        f"--probe must be in 1..n-train ({c.n_train}), got {c.probe}",
    )
    require(
        c.activation in ACTIVATIONS,
        f"unknown activation {c.activation!r}: choose from {', '.join(ACTIVATIONS)}",
    )
    for name in ("gamma_min", "gamma_max", "gamma_per_decade", "float64_below"):
        v = getattr(c, name)
        require(
            math.isfinite(v) and v > 0,
            f"--{name.replace('_', '-')} must be a finite number > 0, got {v}",
        )
    require(
        c.gamma_min <= c.gamma_max,
        f"--gamma-min {c.gamma_min} exceeds --gamma-max {c.gamma_max}: swap them",
    )
    require(
        math.isfinite(c.lr) and 0 < c.lr < 2,
        f"--lr must be in (0, 2) (the lazy stability limit), got {c.lr}",
    )
    require(c.float64 in FLOAT64, f"--float64 must be one of {', '.join(FLOAT64)}, got {c.float64}")
    require(c.chunk_size >= 0, f"--chunk-size must be >= 0 (0 = one block), got {c.chunk_size}")
    require(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")


def load_data(name: str, c: Config):
    """`(x_train, y_train, x_test, y_test)` in float64, targets of shape `(n, 1)`."""
    if name == "teacher":
        data = load_dataset(
            "teacher", n_train=c.n_train, n_test=c.n_test, seed=c.seed, dim=c.teacher_dim
        )
        ys = data.y_train, data.y_test
    else:
        data = load_dataset("mnist1d", n_train=c.n_train, n_test=c.n_test, seed=c.seed)
        ys = tuple(
            np.where(np.asarray(y) > 4, 1.0, -1.0)[:, None] for y in (data.y_train, data.y_test)
        )
    f64 = lambda a: np.asarray(a, np.float64).reshape(a.shape[0], -1)
    return f64(data.x_train), f64(ys[0]), f64(data.x_test), f64(ys[1])


def lr_scale(gammas: np.ndarray, depth: int) -> np.ndarray:
    """`s(γ) = γ²` for γ ≤ 1, `γ^(2/L)` above: η0 = base · s(γ)."""
    return np.where(gammas <= 1.0, gammas**2, gammas ** (2.0 / depth))


def record_steps(c: Config) -> np.ndarray:
    return np.concatenate([[0], log_steps(c.steps, c.records)]).astype(np.int64)


def kernel_steps(c: Config, steps: np.ndarray) -> np.ndarray:
    """`kernel_records` of the recorded steps (> 0), log-spaced, the last step included."""
    later = steps[1:]
    idx = np.unique(np.round(np.geomspace(1, later.size, min(c.kernel_records, later.size))))
    return later[idx.astype(int) - 1]


# --------------------------------------------------------------------------- training


def _trainer(apply_net):
    """Jitted `advance` (GD steps, vmapped over γ) and `evaluate` for the centred model."""

    def loss_one(p, g, x, y, f0):
        f = (apply_net(p, x) - f0) / g
        return 0.5 * jnp.mean((f - y) ** 2)

    def step_one(p, dead, g, eta, x, y, f0):
        loss, grads = jax.value_and_grad(loss_one)(p, g, x, y, f0)
        now = dead | ~jnp.isfinite(loss) | (loss > THRESHOLD)
        new = jax.tree.map(lambda a, d: jnp.where(now, a, a - eta * d), p, grads)
        return new, now

    step = jax.vmap(step_one, in_axes=(0, 0, 0, 0, None, None, None))

    @jax.jit
    def advance(params, dead, gammas, etas, x, y, f0, num):
        body = lambda _, c: step(c[0], c[1], gammas, etas, x, y, f0)
        return jax.lax.fori_loop(0, num, body, (params, dead))

    def evaluate(params, gammas, x, y, f0, p):
        """Train and test loss (the first `p` rows of x are the training points)."""

        def one(q, g):
            err = ((apply_net(q, x) - f0) / g - y) ** 2
            return 0.5 * jnp.mean(err[:p]), 0.5 * jnp.mean(err[p:])

        return jax.vmap(one)(params, gammas)

    return advance, jax.jit(evaluate, static_argnums=5)


def _probe_kernels(apply_net, params, x_probe, n: int) -> list[jax.Array]:
    return [
        empirical_ntk(apply_net, jax.tree.map(lambda a, i=i: a[i], params), x_probe)
        for i in range(n)
    ]


def train_group(net64: MLP, data, gammas, etas, steps, ksteps, probe: int, use64: bool) -> dict:
    """Train one init at every γ of a same-precision group; losses and probe-kernel distances."""
    with jax.enable_x64(use64):
        dtype = jnp.float64 if use64 else jnp.float32
        net = jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, net64)
        params0, apply_net = functional(net)  # an Apply: the NTK's structured method applies
        x_tr, y_tr, x_te, y_te = (jnp.asarray(a, dtype) for a in data)
        p = x_tr.shape[0]
        x_all, y_all = jnp.concatenate([x_tr, x_te]), jnp.concatenate([y_tr, y_te])
        f0_all = apply_net(params0, x_all)
        f0_tr = f0_all[:p]
        n = gammas.size
        params = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params0)
        g, e = jnp.asarray(gammas, dtype), jnp.asarray(etas, dtype)
        dead = jnp.zeros(n, bool)
        advance, evaluate = _trainer(apply_net)
        x_probe = x_tr[:probe]
        k0 = empirical_ntk(apply_net, params0, x_probe)
        train, test, dist = [], [], []
        done = 0
        for t in steps:
            params, dead = advance(params, dead, g, e, x_tr, y_tr, f0_tr, int(t - done))
            done = int(t)
            bad = np.asarray(dead)
            tr, te = evaluate(params, g, x_all, y_all, f0_all, p)
            train.append(np.where(bad, np.nan, np.asarray(tr)))
            test.append(np.where(bad, np.nan, np.asarray(te)))
            if t in ksteps:
                ks = _probe_kernels(apply_net, params, x_probe, n)
                d = [float(kernel_distance(k0, k)) for k in ks]
                dist.append(np.where(bad, np.nan, np.asarray(d)))
        return {
            "train_loss": np.stack(train, -1),
            "test_loss": np.stack(test, -1),
            "kernel_distance": np.stack(dist, -1),
            "diverged": np.asarray(dead),
        }


# --------------------------------------------------------------------------- theory


def predictions(k_all, p: int, data, gammas, eta0, width: int, steps) -> tuple[np.ndarray, ...]:
    """Closed-form train/test losses `(γ, step)` for the unscaled net kernel `k_all` on
    `[x_train; x_test]` (P + Q points)."""
    _, y_tr, _, y_te = (jnp.asarray(a) for a in data)
    ktr, kte = k_all[:p, :p], k_all[p:, :p]
    train, test = [], []
    for g, e0 in zip(gammas, eta0, strict=True):
        rate = effective_rate(float(e0), gamma=float(g), lr_multiplier=float(width))
        pred = kernel_gd_predictions(
            ktr, kte, y_tr, jnp.asarray(steps), eta=rate, method="gd", y_test=y_te
        )
        train.append(np.asarray(pred.train_loss))
        test.append(np.asarray(pred.test_loss))
    return np.stack(train), np.stack(test)


def relative_gap(measured: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """`|measured − predicted| / predicted`, elementwise."""
    return np.abs(measured - predicted) / predicted


def run_case(c: Config, name: str, gammas: np.ndarray, steps, ksteps, progress: bool) -> dict:
    """Every width of one dataset: training, both predictions, gaps, kernel distances."""
    data = load_data(name, c)
    p = c.n_train
    x_all = np.concatenate([data[0], data[2]])
    use64 = {
        "auto": gammas < c.float64_below,
        "always": np.ones(gammas.size, bool),
        "never": np.zeros(gammas.size, bool),
    }[c.float64]
    out: dict[str, Any] = {k: [] for k in ("train_loss", "test_loss", "kernel_distance")}
    out.update({k: [] for k in ("diverged", "emp_train", "emp_test", "init_to_inf", "k_emp")})
    eta0 = None
    bar = tqdm(c.widths, desc=f"lazy-limit {name}", disable=not progress)
    for width in bar:
        with jax.enable_x64(True):
            net = MLP(
                x_all.shape[1],
                width,
                c.depth,
                1,
                activation=c.activation,
                parameterization="mup",
                dtype=jnp.float64,
                key=jax.random.fold_in(jax.random.key(c.seed), 0),
            )
            params0, apply_net = functional(net)
            xa = jnp.asarray(x_all)
            k_emp = empirical_ntk(apply_net, params0, xa, chunk_size=c.chunk_size or None)
            k_inf = infinite_kernels(net, xa).ntk  # Θ_mup = Θ_ntk/N for this N
            if eta0 is None:  # the lazy scale, from the width-independent N·Θ_mup
                lam = float(jnp.linalg.eigvalsh(width * k_inf[:p, :p])[-1])
                eta0 = c.lr * p / lam * lr_scale(gammas, c.depth)
                out["eta0"] = eta0
                inf = predictions(k_inf, p, data, gammas, eta0, width, steps)
                out["inf_train"], out["inf_test"] = inf
            emp = predictions(k_emp, p, data, gammas, eta0, width, steps)
            out["init_to_inf"].append(float(kernel_distance(k_emp, k_inf)))
            out["k_emp"].append(np.asarray(k_emp))
        res = {}
        for flag in (True, False):
            sel = use64 == flag
            if sel.any():
                lr = eta0[sel] * width  # the μP learning rate η0·N
                r = train_group(net, data, gammas[sel], lr, steps, ksteps, c.probe, flag)
                for k, v in r.items():
                    res.setdefault(k, np.full((gammas.size, *v.shape[1:]), np.nan))[sel] = v
        for k in ("train_loss", "test_loss", "kernel_distance", "diverged"):
            out[k].append(res[k])
        out["emp_train"].append(emp[0])
        out["emp_test"].append(emp[1])
    arrays = {k: np.stack(v) for k, v in out.items() if isinstance(v, list)}
    arrays.update(eta0=out["eta0"], inf_train=out["inf_train"], inf_test=out["inf_test"])
    arrays["diverged"] = arrays["diverged"].astype(bool)
    arrays["float64"] = use64
    gaps = lambda tr, te: np.maximum(
        relative_gap(arrays["train_loss"], tr), relative_gap(arrays["test_loss"], te)
    )
    arrays["gap"] = gaps(arrays["emp_train"], arrays["emp_test"])
    arrays["gap_infinite"] = gaps(arrays["inf_train"][None], arrays["inf_test"][None])
    return arrays


# --------------------------------------------------------------------------- the study


def _nested(c: Config, gammas, values: dict[str, np.ndarray]) -> dict:
    """`{dataset: {width: {gamma: value}}}` from `(width, gamma)` arrays per dataset."""
    return {
        d: {
            str(w): {f"{g:.3g}": _num(v[wi, gi]) for gi, g in enumerate(gammas)}
            for wi, w in enumerate(c.widths)
        }
        for d, v in values.items()
    }


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def expectations(c: Config, gammas, res: dict[str, dict]) -> dict[str, bool | None]:
    """Which of the theory's expectations the measured numbers show."""
    gap = {d: max_gap(r["gap"]) for d, r in res.items()}
    gap_inf = {d: max_gap(r["gap_infinite"]) for d, r in res.items()}
    kd = {d: r["kernel_distance"][..., -1] for d, r in res.items()}
    small = gammas <= 1e-2 * (1 + 1e-9)
    order = np.argsort(c.widths)

    def rising(v):  # per width: the largest non-diverged γ above the smallest
        ok = [row[np.isfinite(row)] for row in v]
        return all(r.size >= 2 and r[-1] > r[0] for r in ok)

    return {
        "empirical_gap_below_5pct_at_gamma_le_1e-2": (
            bool(all(np.all(g[:, small] < 0.05) for g in gap.values())) if small.any() else None
        ),
        "empirical_gap_larger_at_largest_gamma": (
            all(rising(g) for g in gap.values()) if gammas.size > 1 else None
        ),
        "infinite_gap_shrinks_with_width_at_smallest_gamma": (
            bool(all(np.all(np.diff(g[order, 0]) < 0) for g in gap_inf.values()))
            if len(c.widths) > 1
            else None
        ),
        "kernel_distance_larger_at_largest_gamma": (
            all(rising(v) for v in kd.values()) if gammas.size > 1 else None
        ),
    }


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Train, predict, compare; write results.nc and figures; return the summary."""
    validate(c)
    gammas = gamma_grid(c)
    steps = record_steps(c)
    ksteps = kernel_steps(c, steps)
    res = {d: run_case(c, d, gammas, steps, ksteps, progress) for d in c.datasets}
    write_dataset(store.results_path, _dataset(c, gammas, steps, ksteps, res))
    order = np.argsort(c.widths)
    figures(c, gammas, steps, ksteps, res, store, order)
    return {
        "datasets": list(c.datasets),
        "widths": list(c.widths),
        "gammas": [float(g) for g in gammas],
        "theory_gap": _nested(c, gammas, {d: max_gap(r["gap"]) for d, r in res.items()}),
        "theory_gap_infinite": _nested(
            c, gammas, {d: max_gap(r["gap_infinite"]) for d, r in res.items()}
        ),
        "kernel_distance_final": _nested(
            c, gammas, {d: r["kernel_distance"][..., -1] for d, r in res.items()}
        ),
        "init_ntk_distance_to_infinite": {
            d: {str(w): float(r["init_to_inf"][i]) for i, w in enumerate(c.widths)}
            for d, r in res.items()
        },
        "diverged_runs": int(sum(r["diverged"].sum() for r in res.values())),
        "expectations": expectations(c, gammas, res),
    }


def _dataset(c: Config, gammas, steps, ksteps, res) -> xr.Dataset:
    st = lambda k: np.stack([res[d][k] for d in c.datasets])
    full = ("dataset", "width", "gamma", "step")
    return xr.Dataset(
        {
            "train_loss": (full, st("train_loss")),
            "test_loss": (full, st("test_loss")),
            "pred_train_loss": (full, st("emp_train")),
            "pred_test_loss": (full, st("emp_test")),
            "inf_train_loss": (("dataset", "gamma", "step"), st("inf_train")),
            "inf_test_loss": (("dataset", "gamma", "step"), st("inf_test")),
            "gap": (full, st("gap")),
            "gap_infinite": (full, st("gap_infinite")),
            "kernel_distance": (
                ("dataset", "width", "gamma", "kernel_step"),
                st("kernel_distance"),
            ),
            "init_ntk_distance_to_infinite": (("dataset", "width"), st("init_to_inf")),
            "diverged": (("dataset", "width", "gamma"), st("diverged")),
            "eta0": (("dataset", "gamma"), st("eta0")),
            "float64": (("dataset", "gamma"), st("float64")),
        },
        coords={
            "dataset": list(c.datasets),
            "width": list(c.widths),
            "gamma": gammas,
            "step": steps,
            "kernel_step": ksteps,
        },
        attrs={
            "study": NAME,
            "loss": "1/(2P) sum (f - y)^2, one output",
            "gap": "|measured - predicted| / predicted, max(train, test) per step",
            "learning_rate": "eta0 * width (muP)",
            "eta0": "lr * P / lambda_max(N Theta_inf) * s(gamma)",
            "s_gamma": "gamma^2 for gamma <= 1, gamma^(2/depth) above",
        },
    )
