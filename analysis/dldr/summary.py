"""The DLDR study's results as one xarray Dataset, and its headline numbers (per seed)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .config import NAME, Config, num_samples
from .walk import isotropic_walk_explained_variance, walk_explained_variance

METRICS = ("test_accuracy", "train_accuracy")


def epochs_to(acc: np.ndarray, target: float) -> int | None:
    """First epoch index (0 = before training) with `acc >= target`, else None."""
    hit = np.nonzero(np.asarray(acc) >= target)[0]
    return int(hit[0]) if hit.size else None


def pick_tuned(ds: xr.Dataset) -> tuple[float, np.ndarray]:
    """The tuned SGD: the learning rate with the best mean final test accuracy over seeds,
    and its final test accuracy per seed."""
    final = ds.tuned_test_accuracy.isel(tuned_epoch=-1)
    best = int(np.nanargmax(final.mean("seed").values))
    return float(ds.eta.values[best]), final.isel(eta=best).values


def to_dataset(results: dict, c: Config) -> xr.Dataset:
    """Every run's per-epoch curves. Variables `{prefix}_{metric}` with prefix `sgd`, `pbfgs`,
    `psgd`, `random`, `tuned` (clean) and `noisy_sgd`, `noisy_pbfgs` (label noise); each
    has its own epoch dimension `{prefix}_epoch`."""
    variables: dict = {}
    coords: dict = {"seed": list(c.seeds), "d": list(c.ds), "eta": list(c.tuned_lrs)}
    for cond, res in results.items():
        pre = "" if cond == "clean" else "noisy_"
        for kind in ("sgd", "pbfgs", "psgd", "random", "tuned"):
            if kind not in res:
                continue
            r = res[kind]
            if kind == "random":
                r = r.isel(d=0, drop=True)
            name = pre + kind
            ep = f"{name}_epoch"
            for m in METRICS:
                v = r[m].rename(step=ep).drop_vars(["epoch", ep], errors="ignore")
                variables[f"{name}_{m}"] = v
            coords[ep] = np.arange(r.sizes["step"])
        evr = res["explained_variance_ratio"]
        variables[f"{pre}explained_variance_ratio"] = (("seed", "component"), evr)
        variables[f"{pre}step_norm"] = (("seed", "increment"), res["step_norm"])
    coords["component"] = np.arange(1, num_samples(c))
    coords["increment"] = np.arange(1, num_samples(c))
    ds = xr.Dataset(variables).assign_coords(coords)
    ds.attrs.update(
        study=NAME,
        samples=num_samples(c),
        num_params=int(results["clean"]["num_params"]),
        label_noise=c.label_noise,
        fallback=c.fallback,
    )
    return ds


def _per_seed(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a)]


def summarize(ds: xr.Dataset, c: Config, dataset: str) -> dict:
    """Headline numbers, per seed (the claims are judged on them: `claims.judge_claims`)."""
    dmax = max(c.ds)
    eta, tuned_final = pick_tuned(ds)
    cum = np.cumsum(ds.explained_variance_ratio.values, axis=-1)  # (seed, component)
    out: dict = {
        "dataset": dataset,
        "network": c.network,
        "num_params": int(ds.attrs["num_params"]),
        "samples": num_samples(c),
        "seeds": list(c.seeds),
        "fallback": c.fallback,
        "tuned_sgd": {
            "lr": eta,
            "test_accuracy": _per_seed(tuned_final),
            "final_test_accuracy_by_lr": {
                str(e): float(ds.tuned_test_accuracy.sel(eta=e).isel(tuned_epoch=-1).mean())
                for e in c.tuned_lrs
            },
        },
        "sgd_sampling_end_test_accuracy": _per_seed(
            ds.sgd_test_accuracy.isel(sgd_epoch=c.sample_epochs)
        ),
        "sgd_continued_test_accuracy": _per_seed(ds.sgd_test_accuracy.isel(sgd_epoch=-1)),
        "random_pbfgs_test_accuracy": _per_seed(ds.random_test_accuracy.isel(random_epoch=-1)),
        "d": {},
    }
    target = c.target_fraction * tuned_final
    norms = ds.step_norm.values  # (seed, increment)
    t = num_samples(c)
    out["isotropic_walk_explained_variance"] = {
        str(d): isotropic_walk_explained_variance(t, d) for d in c.ds
    }
    for d in c.ds:
        pb = ds.pbfgs_test_accuracy.sel(d=d).values
        out["d"][str(d)] = {
            "explained_variance": _per_seed(cum[:, d - 1]),
            "matched_walk_explained_variance": [walk_explained_variance(n, d) for n in norms],
            "pbfgs_test_accuracy": _per_seed(pb[:, -1]),
            "psgd_test_accuracy": _per_seed(ds.psgd_test_accuracy.sel(d=d).values[:, -1]),
            "pbfgs_epochs_to_target": [epochs_to(a, t) for a, t in zip(pb, target, strict=True)],
        }
    out["tuned_sgd"]["epochs_to_target"] = [
        epochs_to(a, t)
        for a, t in zip(ds.tuned_test_accuracy.sel(eta=eta).values, target, strict=True)
    ]
    if "noisy_sgd_test_accuracy" in ds:
        sgd_n = ds.noisy_sgd_train_accuracy.isel(noisy_sgd_epoch=-1)
        sgd_t = ds.noisy_sgd_test_accuracy
        out["label_noise"] = {
            "fraction": c.label_noise,
            "sgd_final_train_accuracy": _per_seed(sgd_n),
            "sgd_final_test_accuracy": _per_seed(sgd_t.isel(noisy_sgd_epoch=-1)),
            "sgd_best_test_accuracy": _per_seed(sgd_t.max("noisy_sgd_epoch")),
            "pbfgs_test_accuracy": _per_seed(
                ds.noisy_pbfgs_test_accuracy.sel(d=dmax).isel(noisy_pbfgs_epoch=-1)
            ),
            "pbfgs_train_accuracy": _per_seed(
                ds.noisy_pbfgs_train_accuracy.sel(d=dmax).isel(noisy_pbfgs_epoch=-1)
            ),
            "explained_variance_d_max": _per_seed(
                np.cumsum(ds.noisy_explained_variance_ratio.values, axis=-1)[:, dmax - 1]
            ),
        }
    return out
