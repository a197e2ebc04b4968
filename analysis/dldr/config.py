"""The DLDR study's configuration, presets, validation, data and networks (PAPERS.md §3).

The study as a whole: for each network (an MLP and a CNN) and each label condition (clean,
and a fraction of the training labels randomised), ordinary SGD with momentum runs for
`full_epochs` epochs; during its first `sample_epochs` epochs the flattened parameters are
recorded at initialisation and `samples_per_epoch` times per epoch (an engine measure). PCA of
those `t` samples (through the `t×t` Gram matrix) gives `P ∈ R^(d×D)`; for each `d` training
restarts from `w₀` with `w = w₀ + Pᵀα` and runs P-SGD (momentum SGD on `PᵀP g`) and P-BFGS
(quasi-Newton in α with Armijo backtracking on each mini-batch) for `subspace_epochs` epochs.
The top-`d` directions are nested, so one PCA with the largest `d` serves every `d`. The full
SGD run shares the seed (initialisation and data order) with the sampling phase: the sampling
phase is its beginning. Every training run is one call of the engine `lazyrich.train.train`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from lazyrich.data import ENV_VAR, Dataset, load_dataset, num_batches
from lazyrich.errors import require
from lazyrich.models import CNN, MLP, partition
from lazyrich.train import Factory

NAME = "dldr"
TITLE = "DLDR: training in a tiny subspace of the SGD trajectory"
DESCRIPTION = (
    "An MLP and a CNN are trained by SGD with momentum; during the first sampling epochs the "
    "parameters are recorded (at initialisation and then periodically, t samples). PCA of the "
    "centred samples gives d orthonormal directions P; training restarts from w0 with "
    "w = w0 + Pᵀα and only the d coordinates α are trained, by P-SGD (momentum SGD on PᵀP g) "
    "and by P-BFGS (BFGS in α with Armijo backtracking on each mini-batch). Full SGD is run "
    "longer with the same seed as the reference. pbfgs_epochs_to_95pct counts P-BFGS epochs "
    "until its test accuracy reaches 95% of full SGD's final test accuracy (None if never). "
    "The label_noise entries repeat everything with a fraction of the training labels "
    "randomised (test labels clean). The paper's claim: with d = 40 P-BFGS matches ordinary "
    "training in far fewer epochs than the sampling phase, and is robust to label noise."
)

DatasetName = Literal["mnist1d", "mnist", "fashion-mnist", "cifar10"]
NetworkName = Literal["mlp", "cnn"]


@dataclass(frozen=True)
class Config:
    """Options of the DLDR study."""

    networks: tuple[NetworkName, ...] = ("mlp", "cnn")
    """Networks to run (each gets its own sampling, subspaces and baselines)."""
    mlp_data: DatasetName = "mnist1d"
    """Dataset of the MLP (mnist, fashion-mnist, cifar10 are read from --data-dir)."""
    cnn_data: DatasetName = "mnist1d"
    """Dataset of the CNN."""
    n_train: int | None = 4000
    """Training examples (None: the whole training set; mnist1d generates 4000)."""
    n_test: int | None = 1000
    """Test examples (None: the whole test set; mnist1d generates 1000)."""
    mlp_width: int = 64
    """Hidden width of the MLP."""
    mlp_depth: int = 2
    """Hidden layers of the MLP."""
    cnn_width: int = 8
    """Channels of the CNN's first convolution (then 2N channels, an 8N fully connected layer)."""
    lr: float = 0.1
    """Learning rate of SGD (momentum 0.9), for the sampling phase and the full run."""
    batch: int = 128
    """Batch size of SGD and P-SGD."""
    sample_epochs: int = 10
    """Epochs of the sampling phase (the first epochs of the full SGD run)."""
    samples_per_epoch: int = 8
    """Parameter samples per epoch of the sampling phase (1: once per epoch, as in the paper)."""
    full_epochs: int = 20
    """Epochs of the full SGD reference run (>= sample-epochs)."""
    ds: tuple[int, ...] = (5, 10, 20, 40)
    """Subspace dimensions d (each <= samples − 1)."""
    subspace_epochs: int = 6
    """Epochs of P-SGD and of P-BFGS for each d."""
    psgd_lr: float = 0.1
    """Learning rate of P-SGD (momentum 0.9)."""
    pbfgs_batch: int = 256
    """Batch size of P-BFGS (1024 in the paper)."""
    label_noise: float = 0.2
    """Fraction of training labels randomised in the label-noise variant (0: skip it)."""
    seed: int = 0
    """Seed of initialisation, data order, label noise (and of generated mnist1d data)."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        mlp_data="mnist",
        cnn_data="cifar10",
        n_train=None,
        n_test=None,
        mlp_width=512,
        mlp_depth=2,
        cnn_width=32,
        lr=0.05,
        batch=128,
        sample_epochs=80,
        samples_per_epoch=1,
        full_epochs=100,
        ds=(5, 10, 20, 40),
        subspace_epochs=20,
        psgd_lr=0.05,
        pbfgs_batch=1024,
        label_noise=0.2,
    ),
}


def num_samples(c: Config) -> int:
    """Samples the schedule records: initialisation plus `samples_per_epoch` per epoch."""
    return 1 + c.sample_epochs * c.samples_per_epoch


@functools.lru_cache(maxsize=2)
def _load(name: str, n_train: int | None, n_test: int | None, seed: int, data_dir: str) -> Dataset:
    del data_dir  # part of the cache key only: the loaders read $LAZYRICH_DATA themselves
    return load_dataset(name, n_train=n_train, n_test=n_test, seed=seed)


def load(name: str, c: Config) -> Dataset:
    """The dataset `name` as the config asks (cached, so `validate` and `run` load it once)."""
    return _load(name, c.n_train, c.n_test, c.seed, os.environ.get(ENV_VAR, ""))


def dataset_of(c: Config, net: str) -> str:
    """The dataset name of network `net`."""
    return c.mlp_data if net == "mlp" else c.cnn_data


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


def build_network(net: str, data: Dataset, c: Config) -> Network:
    """The factory of network `net` for `data`."""
    width, depth = (c.mlp_width, c.mlp_depth) if net == "mlp" else (c.cnn_width, 0)
    return Network(net, tuple(data.input_shape), data.out_dim, width, depth)


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
    require(len(c.networks) >= 1, "--networks is empty: pass --networks mlp cnn (or one of them)")
    require(
        len(set(c.networks)) == len(c.networks),
        f"--networks {' '.join(c.networks)} repeats a network: name each at most once",
    )
    for name in ("mlp_width", "mlp_depth", "cnn_width", "batch", "full_epochs"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("subspace_epochs", "pbfgs_batch"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("n_train", "n_test"):
        v = getattr(c, name)
        require(v is None or v >= 1, f"--{name.replace('_', '-')} must be >= 1 (or None), got {v}")
    for name in ("lr", "psgd_lr"):
        v = getattr(c, name)
        require(np.isfinite(v) and v > 0, f"--{name.replace('_', '-')} must be > 0, got {v}")
    require(
        0.0 <= c.label_noise < 1.0,
        f"--label-noise must be in [0, 1), got {c.label_noise}: pass 0 to skip the variant",
    )
    t = num_samples(c)
    require(
        c.sample_epochs >= 1 and c.samples_per_epoch >= 1,
        f"the sampling schedule (--sample-epochs {c.sample_epochs}, --samples-per-epoch "
        f"{c.samples_per_epoch}) yields {t} sample(s); PCA needs at least 2: raise both to >= 1",
    )
    require(
        c.full_epochs >= c.sample_epochs,
        f"--full-epochs {c.full_epochs} is shorter than --sample-epochs {c.sample_epochs}: "
        "the sampling phase is the start of the full run; raise --full-epochs",
    )
    require(len(c.ds) >= 1, "--ds is empty: pass subspace dimensions, e.g. --ds 5 10 20 40")
    for d in c.ds:
        require(d >= 1, f"--ds: d={d} must be >= 1")
        require(
            d <= t - 1,
            f"d={d} exceeds samples−1={t - 1} (sampling {c.sample_epochs} epochs × "
            f"{c.samples_per_epoch} + 1); raise --sample-epochs or --samples-per-epoch, "
            "or lower --ds",
        )
    for net in c.networks:
        data = load(dataset_of(c, net), c)  # DataError for a missing file, before any output
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
