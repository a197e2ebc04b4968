"""The DLDR study's headline numbers and its results as one xarray Dataset."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .config import NAME, Config, dataset_of, num_samples


def epochs_to(acc: np.ndarray, target: float) -> int | None:
    """First epoch index (0 = before training) with `acc >= target`, else None."""
    hit = np.nonzero(acc >= target)[0]
    return int(hit[0]) if hit.size else None


def condition_summary(res: dict[str, np.ndarray], c: Config) -> dict:
    """Headline numbers of one condition (network × label noise)."""
    full = float(res["sgd_test_accuracy"][-1])
    cum = np.cumsum(res["explained_variance_ratio"])
    target = 0.95 * full
    per_d = {}
    for i, d in enumerate(c.ds):
        per_d[str(d)] = {
            "pbfgs_test_accuracy": float(res["pbfgs_test_accuracy"][i, -1]),
            "psgd_test_accuracy": float(res["psgd_test_accuracy"][i, -1]),
            "pbfgs_epochs_to_95pct": epochs_to(res["pbfgs_test_accuracy"][i], target),
            "psgd_epochs_to_95pct": epochs_to(res["psgd_test_accuracy"][i], target),
            "explained_variance": float(cum[d - 1]),
        }
    return {
        "full_test_accuracy": full,
        "full_train_accuracy": float(res["sgd_train_accuracy"][-1]),
        "sgd_epochs_to_95pct": epochs_to(res["sgd_test_accuracy"], target),
        "d": per_d,
    }


def to_dataset(results, c: Config, conditions) -> xr.Dataset:
    """Every condition's curves, stacked along `network` and `condition`."""
    nets = list(results)

    def stack(name):
        return np.stack([np.stack([results[n][k][name] for k in conditions]) for n in nets])

    dims = ("network", "condition")
    t = num_samples(c)
    return xr.Dataset(
        {
            "sgd_test_accuracy": (dims + ("sgd_epoch",), stack("sgd_test_accuracy")),
            "sgd_train_accuracy": (dims + ("sgd_epoch",), stack("sgd_train_accuracy")),
            "sgd_test_loss": (dims + ("sgd_epoch",), stack("sgd_test_loss")),
            "psgd_test_accuracy": (dims + ("d", "epoch"), stack("psgd_test_accuracy")),
            "psgd_train_accuracy": (dims + ("d", "epoch"), stack("psgd_train_accuracy")),
            "pbfgs_test_accuracy": (dims + ("d", "epoch"), stack("pbfgs_test_accuracy")),
            "pbfgs_train_accuracy": (dims + ("d", "epoch"), stack("pbfgs_train_accuracy")),
            "explained_variance_ratio": (dims + ("component",), stack("explained_variance_ratio")),
        },
        coords={
            "network": nets,
            "condition": list(conditions),
            "sgd_epoch": np.arange(c.full_epochs + 1),
            "d": np.asarray(c.ds),
            "epoch": np.arange(c.subspace_epochs + 1),
            "component": np.arange(1, t),
        },
        attrs={
            "study": NAME,
            "samples": t,
            "sample_epochs": c.sample_epochs,
            "label_noise": c.label_noise,
            "datasets": ", ".join(f"{n}: {dataset_of(c, n)}" for n in nets),
        },
    )
