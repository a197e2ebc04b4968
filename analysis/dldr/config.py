"""The DLDR study's configuration, presets, validation, data and network (PAPERS.md §3).

The study as a whole: one network is trained by SGD with momentum from each seed's `w₀`; the
flattened parameters are sampled during its first `sample_epochs` epochs; PCA of the samples
gives `P`; P-SGD and P-BFGS restart from `w₀` in `w₀ + span(Pᵀ)` for each `d`. Controls:
P-BFGS in a random subspace, the SGD run continued, a tuned SGD with step decay. A label-noise
condition repeats sampling and P-BFGS on partly randomised labels. Every training run is an
engine call (`lazyrich.train.train`); the claims and their rules are in `claims`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from lazyrich.data import Dataset, load_dataset, num_batches
from lazyrich.errors import require
from lazyrich.models import CNN, MLP, param_count, partition
from lazyrich.train import Factory

NAME = "dldr"
TITLE = "DLDR: training in a tiny subspace of the SGD trajectory"
DESCRIPTION = (
    "One network (an MLP or a CNN) is trained by SGD with momentum from w0 (one per seed); "
    "during its first sample_epochs epochs the flattened parameters are recorded (at "
    "initialisation, then samples_per_epoch times per epoch: t samples). PCA of the centred "
    "samples gives d orthonormal directions P; training restarts from w0 with w = w0 + Pᵀα and "
    "only the d coordinates α are trained, by P-SGD (momentum SGD on PᵀP g, learning rate "
    "decayed ×0.1 at half and three quarters of its epochs) and by P-BFGS (BFGS in α with "
    "Armijo backtracking on each mini-batch; with no accepted trial the last one, 0.4^19·p, as "
    "the authors' code, unless --fallback zero). Controls: P-BFGS in a random orthonormal "
    "d-dimensional subspace through the same w0; the sampling SGD run continued for as many "
    "epochs as P-BFGS gets; a tuned SGD (the best of a learning-rate grid, step decay ×0.1 at "
    "half and three quarters) run to convergence. The label-noise condition repeats the "
    "sampling (from an SGD run long enough to memorise the noisy labels) and P-BFGS with a "
    "fraction of the training labels randomised (test labels clean). Claims (PAPERS.md §3): "
    "the trajectory lies in a low-dimensional space (its top d directions, of at least 2d "
    "samples, explain more of its variance than those of a random walk with the same steps); "
    "P-BFGS and P-SGD in the top d directions reach the tuned SGD's test accuracy, P-BFGS in "
    "fewer epochs, the trajectory subspace beats a random one, P-BFGS matches the SGD run "
    "continued for as many epochs, and DLDR is robust to label noise where SGD memorises."
)

DatasetName = Literal["mnist1d", "mnist", "fashion-mnist", "cifar10"]
NetworkName = Literal["mlp", "cnn"]
FALLBACKS = ("smallest", "zero")


@dataclass(frozen=True)
class Config:
    """Options of the DLDR study."""

    network: NetworkName = "mlp"
    """Network: an MLP or a CNN (standard parameterisation)."""
    data: DatasetName = "mnist1d"
    """Dataset (mnist, fashion-mnist, cifar10 are read from --data-dir)."""
    data_dir: str = ""
    """Directory with the dataset files ("": $LAZYRICH_DATA); mnist1d needs none."""
    n_train: int | None = 4000
    """Training examples (None: the whole training set; mnist1d generates 4000)."""
    n_test: int | None = 1000
    """Test examples (None: the whole test set; mnist1d generates 1000)."""
    width: int = 64
    """Hidden width of the MLP, or channels of the CNN's first convolution."""
    depth: int = 2
    """Hidden layers of the MLP (unused by the CNN)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds (initialisation w0, data order, random subspace); the claims' intervals are
    over seeds."""
    lr: float = 0.1
    """Learning rate of the sampling SGD (momentum 0.9, constant)."""
    batch: int = 128
    """Batch size of SGD and P-SGD."""
    sample_epochs: int = 10
    """Epochs of the sampling phase (the first epochs of the SGD run)."""
    samples_per_epoch: int = 4
    """Parameter samples per epoch of the sampling phase (1: once per epoch, as the authors'
    code)."""
    ds: tuple[int, ...] = (5, 10, 20)
    """Subspace dimensions d (2·d <= samples: the top d of a trajectory with at least 2d
    samples, as the authors' 40 of 81); the largest one is the claims' d."""
    subspace_epochs: int = 6
    """Epochs of P-SGD, of P-BFGS, and of the continued SGD after the sampling phase."""
    psgd_lr: float = 0.1
    """Initial learning rate of P-SGD (momentum 0.9; ×0.1 at 1/2 and 3/4 of its epochs)."""
    pbfgs_batch: int = 256
    """Batch size of P-BFGS (1024 in the authors' code)."""
    fallback: str = "smallest"
    """P-BFGS when no Armijo trial is accepted: smallest (apply the last trial 0.4^19·p, as the
    authors' code) or zero (take no step)."""
    tuned_lrs: tuple[float, ...] = (0.03, 0.1)
    """Learning-rate grid of the tuned SGD baseline (the best mean final test accuracy wins)."""
    tuned_epochs: int = 20
    """Epochs of the tuned SGD (×0.1 learning-rate decay at 1/2 and 3/4 of them)."""
    label_noise: float = 0.4
    """Fraction of training labels randomised in the label-noise condition (0: skip it)."""
    noise_epochs: int = 20
    """Epochs of the SGD run on the noisy labels (long enough for it to memorise them); its
    first sample_epochs epochs are the noisy condition's sampling phase."""
    target_fraction: float = 0.98
    """Epochs-to-target claim: the target is this fraction of the tuned SGD's final test
    accuracy (per seed)."""


PRESETS = {
    "quick": Config(ds=(5, 10, 20)),
    "evidence": Config(
        network="mlp",
        data="mnist",
        n_train=None,
        n_test=None,
        width=128,
        depth=2,
        seeds=(0, 1, 2, 3, 4, 5),
        lr=0.05,
        batch=128,
        sample_epochs=40,
        samples_per_epoch=1,
        ds=(5, 10, 20),
        subspace_epochs=20,
        psgd_lr=0.05,
        pbfgs_batch=1024,
        tuned_lrs=(0.02, 0.05, 0.1),
        tuned_epochs=40,
        label_noise=0.4,
        noise_epochs=80,
    ),
    "paper": Config(
        network="cnn",
        data="cifar10",
        n_train=None,
        n_test=None,
        width=32,
        seeds=(0, 1, 2),
        lr=0.05,
        batch=128,
        sample_epochs=80,
        samples_per_epoch=1,
        ds=(5, 10, 20, 40),
        subspace_epochs=20,
        psgd_lr=0.05,
        pbfgs_batch=1024,
        tuned_lrs=(0.01, 0.03, 0.05, 0.1),
        tuned_epochs=150,
        label_noise=0.4,
        noise_epochs=150,
    ),
}


def num_samples(c: Config) -> int:
    """Samples the schedule records: initialisation plus `samples_per_epoch` per epoch."""
    return 1 + c.sample_epochs * c.samples_per_epoch


@functools.lru_cache(maxsize=2)
def _load(name: str, n_train: int | None, n_test: int | None, seed: int, data_dir: str) -> Dataset:
    return load_dataset(name, data_dir or None, n_train=n_train, n_test=n_test, seed=seed)


def load(c: Config) -> Dataset:
    """The dataset as the config asks (cached, so `validate` and `run` load it once)."""
    return _load(c.data, c.n_train, c.n_test, 0, c.data_dir)


class Network(Factory):
    """The engine's model factory: network `net` (standard parameterisation) from the run's
    key (`fold_in(key(seed), 0)`), so each seed has its own `w₀`. Equal factories share
    compiled programs across engine calls."""

    net: str = eqx.field(static=True)
    input_shape: tuple[int, ...] = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __call__(self, key, hp):
        del hp
        if self.net == "mlp":
            in_dim = int(np.prod(self.input_shape))
            return MLP(
                in_dim, self.width, self.depth, self.out_dim, parameterization="standard", key=key
            )
        shape = self.input_shape if len(self.input_shape) > 1 else (*self.input_shape, 1)
        return CNN(shape, self.width, self.out_dim, parameterization="standard", key=key)


def build_network(data: Dataset, c: Config) -> Network:
    """The factory of the config's network for `data`."""
    depth = c.depth if c.network == "mlp" else 0
    return Network(c.network, tuple(data.input_shape), data.out_dim, c.width, depth)


def initial_params(network: Network, seed: int) -> np.ndarray:
    """`w₀` of `seed` as one flat vector (what the engine's factory builds for that seed)."""
    model = network(jax.random.fold_in(jax.random.key(seed), 0), {})
    return np.asarray(ravel_pytree(partition(model)[0])[0])


def sample_steps(c: Config, nb: int) -> np.ndarray:
    """Global SGD steps at which the parameters are sampled: 0, then `samples_per_epoch`
    evenly spaced per epoch (the last one at each epoch's end)."""
    per = c.samples_per_epoch
    return np.array([round(j * nb / per) for j in range(c.sample_epochs * per + 1)], np.int64)


def validate(c: Config) -> None:
    """Check every option and that the data can be loaded; raise a one-line ConfigError."""
    require(
        not c.data_dir or c.data != "mnist1d",
        f"--data-dir {c.data_dir} is not used: --data mnist1d is generated, not read from "
        "files; drop --data-dir (or choose --data mnist, fashion-mnist or cifar10)",
    )
    require(
        c.fallback in FALLBACKS,
        f"--fallback {c.fallback!r} is unknown: choose smallest (the authors') or zero",
    )
    for name in ("width", "depth", "batch", "subspace_epochs", "pbfgs_batch", "tuned_epochs"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("n_train", "n_test"):
        v = getattr(c, name)
        require(v is None or v >= 1, f"--{name.replace('_', '-')} must be >= 1 (or None), got {v}")
    for name in ("lr", "psgd_lr"):
        v = getattr(c, name)
        require(np.isfinite(v) and v > 0, f"--{name.replace('_', '-')} must be > 0, got {v}")
    require(len(c.seeds) >= 1, "--seeds is empty: pass at least one seed, e.g. --seeds 0 1 2")
    require(len(set(c.seeds)) == len(c.seeds), f"--seeds {c.seeds} repeats a seed")
    require(len(c.tuned_lrs) >= 1, "--tuned-lrs is empty: pass learning rates, e.g. 0.03 0.1")
    for v in c.tuned_lrs:
        require(np.isfinite(v) and v > 0, f"--tuned-lrs must be > 0, got {v}")
    require(
        0.0 <= c.label_noise < 1.0,
        f"--label-noise must be in [0, 1), got {c.label_noise}: pass 0 to skip the condition",
    )
    require(
        0 < c.target_fraction <= 1, f"--target-fraction must be in (0, 1], got {c.target_fraction}"
    )
    t = num_samples(c)
    require(
        c.sample_epochs >= 1 and c.samples_per_epoch >= 1,
        f"the sampling schedule (--sample-epochs {c.sample_epochs}, --samples-per-epoch "
        f"{c.samples_per_epoch}) yields {t} sample(s); PCA needs at least 2: raise both to >= 1",
    )
    require(
        c.label_noise == 0 or c.noise_epochs >= c.sample_epochs,
        f"--noise-epochs {c.noise_epochs} is shorter than --sample-epochs {c.sample_epochs}: "
        "the noisy sampling phase is the start of that run; raise --noise-epochs",
    )
    require(len(c.ds) >= 1, "--ds is empty: pass subspace dimensions, e.g. --ds 5 10 20 40")
    for d in c.ds:
        require(d >= 1, f"--ds: d={d} must be >= 1")
        require(
            2 * d <= t,
            f"d={d} needs at least 2d={2 * d} samples, the schedule gives {t} (sampling "
            f"{c.sample_epochs} epochs × {c.samples_per_epoch} + 1; the top d of fewer samples "
            "is nearly every component); raise --sample-epochs or --samples-per-epoch, "
            "or lower --ds",
        )
    data = load(c)  # DataError for a missing file, before any output
    size = param_count(build_network(data, c)(jax.random.key(0), {}))
    require(
        max(c.ds) <= size,
        f"d={max(c.ds)} exceeds the {size} parameters of the network: a random subspace "
        "cannot have more directions than the space; lower --ds or raise --width",
    )
    nb = num_batches(data.n_train, c.batch)
    require(
        c.samples_per_epoch <= nb,
        f"--samples-per-epoch {c.samples_per_epoch} exceeds the {nb} SGD steps per epoch "
        f"of {data.name} (n_train={data.n_train}, batch={c.batch}): the schedule would "
        "repeat samples; lower --samples-per-epoch",
    )
    require(
        c.pbfgs_batch <= data.n_train,
        f"--pbfgs-batch {c.pbfgs_batch} exceeds the {data.n_train} training examples of "
        f"{data.name}: pass --pbfgs-batch <= {data.n_train}",
    )
