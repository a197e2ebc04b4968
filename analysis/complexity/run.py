"""One engine call per task × network, the information measures, and the study's run.

Each run is `lazyrich.train.train` with plain SGD (batch order from the study's seed) and one
measure, the network's hard predictions on the test set at every record; the information
measures are computed from them on the host. The original loop stopped at the first record
with zero training error; the engine runs every record and the history is cut after that
record (same records and numbers, more compute when zero error comes early).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jaxtyping import Array, Int, PRNGKeyArray

from lazyrich.data import Dataset, num_batches
from lazyrich.measures import (
    cmi_permutation_test,
    conditional_mutual_information,
    fit_logistic,
    joint_counts,
    mutual_information,
)
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, Snapshot, default_devices, log_steps, train

from ._stats import (
    bootstrap,
    first_reaching,
    info_floor,
    records_before,
    t0_by_margin,
    t0_test,
    tested_records,
)
from .claims import EXPLAINED_MARGIN, claims
from .config import NAME, Config, cnn_applies, load_task, make_network, seeds, validate
from .figures import figures

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

PREDICT_CHUNK = 2048


def predictions(s: Snapshot) -> Array:
    """The engine measure: hard labels `argmax apply(params, x_test)` (in chunks)."""
    x = s.data.x_test
    n = x.shape[0]
    if n <= PREDICT_CHUNK:
        return jnp.argmax(s.apply(s.params, x), -1).astype(jnp.int32)
    pad = (-n) % PREDICT_CHUNK
    xp = jnp.concatenate([x, x[:pad]]).reshape((-1, PREDICT_CHUNK) + x.shape[1:])
    out = jax.lax.map(lambda xb: jnp.argmax(s.apply(s.params, xb), -1).astype(jnp.int32), xp)
    return out.reshape(-1)[:n]


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
    seed: int,
    progress: bool,
    devices: int | None = None,
) -> dict[str, np.ndarray]:
    """Train `network` on `data` with plain SGD (one engine call); at each record measure F_t
    against L and Y. The history ends at the first record with training error
    <= `c.stop_train_error`."""
    model = make_network(c, network, data, key=key)
    steps = record_steps(c, data.n_train)
    nb = num_batches(data.n_train, c.batch)
    full = [int(t) for t in steps if t % nb == 0 or t == steps[-1]]  # epoch ends, the last
    lr = c.lr_ball if task == "ball" and c.lr_ball > 0 else c.lr
    rec = train(model, optax.sgd(lr), data, grid=Grid.product(seed=[seed]), batch=c.batch,
                loss="ce", record_at=steps.tolist(), evaluate_at=full,
                measures={"pred": predictions}, progress=progress,
                devices=default_devices(devices),
                description=f"{task}/{network} seed {seed}")  # fmt: skip
    assert isinstance(rec, xr.Dataset)
    preds = rec.pred.values.reshape(len(steps), -1).astype(np.int32)
    train_acc = rec.train_accuracy.values.reshape(-1)
    reached = np.nonzero(1.0 - train_acc <= c.stop_train_error)[0]
    keep = int(reached[0]) + 1 if reached.size else len(steps)
    y_test = data.y_test.astype(jnp.int32)
    values = np.stack([np.asarray(information(jnp.asarray(f), linear_test, y_test))
                       for f in preds[:keep]])  # fmt: skip
    out = {"preds": preds[:keep], "step": steps[:keep].astype(float), "epoch": steps[:keep] / nb,
           "train_accuracy": train_acc[:keep]}  # fmt: skip
    out.update({k: values[:, i] for i, k in enumerate(MEASURES)})
    return out


def _at(h, key: str, i: int | None) -> float | None:
    return None if i is None else float(h[key][i])


def analyse(h: dict[str, np.ndarray], i_ly: float, lin_test: float, lin_train: float,
            l_test: Array, y_test: Array, c: Config, *, key) -> dict:  # fmt: skip
    """The headline numbers of one task × network × seed run, with its tests and its
    bootstrap over test points (a per-run 5–95% range, reported; the claims' intervals run
    over runs)."""
    k1, k2, k3 = jax.random.split(key, 3)
    n = int(y_test.shape[0])
    tested = tested_records(h["I_FY"], n, c.t0_floor)
    test = t0_test(h["preds"], l_test, y_test, tested, alpha=c.alpha,
                   permutations=c.permutations, key=k1)  # fmt: skip
    t0 = t0_by_margin(test["cmi_mm"], h["I_FY"], tested, EXPLAINED_MARGIN)
    tl = first_reaching(h["test_accuracy"], lin_test)
    before = records_before(h["I_FY"], t0)
    before_tl = records_before(h["I_FY"], tl)
    boot = bootstrap(h["preds"], l_test, y_test, before, resamples=c.bootstrap, key=k2)
    final = cmi_permutation_test(jnp.asarray(h["preds"][-1]), y_test, l_test, num_values=2,
                                 num_permutations=c.permutations, key=k3)  # fmt: skip
    retained = cmi_permutation_test(l_test, y_test, jnp.asarray(h["preds"][-1]), num_values=2,
                                    num_permutations=c.permutations, key=k3)  # fmt: skip
    h["p_value"], h["I_FY_given_L_mm"] = test["p"], test["cmi_mm"]
    reached = np.nonzero(1.0 - h["train_accuracy"] <= c.stop_train_error)[0]
    mu_final = float(h["mu"][-1])
    ratio = lambda idx: float(h["mu"][idx].sum() / h["I_FY"][idx].sum()) if len(idx) else None
    step = lambda i: None if i is None else int(h["step"][i])
    return {
        "I_LY": i_ly,
        "T0": step(t0),
        "T_L": step(tl),
        "T0_over_T_L": None if t0 is None or tl is None else float(h["step"][t0] / h["step"][tl]),
        "records_before_T_L": None if tl is None else int(tl),
        "T0_test_level": test["level"],
        "T0_permutations": test["permutations"],
        "T0_records_tested": int(len(tested)),
        "T0_info_floor": info_floor(n, c.t0_floor),
        "T0_significance": step(test["t0"]),
        "mu_at_T0": _at(h, "mu", t0),
        "I_FY_at_T0": _at(h, "I_FY", t0),
        "test_accuracy_at_T0": _at(h, "test_accuracy", t0),
        "records_before_T0": int(len(before)),
        "mu_over_I_FY_before_T0": ratio(before),
        "records_before_T_L_informative": int(len(before_tl)),
        "mu_over_I_FY_before_T_L": ratio(before_tl),
        "mu_over_I_FY_before_T0_boot": _pct(boot["ratio"]),
        "mu_final": mu_final,
        "I_FY_final": float(h["I_FY"][-1]),
        "I_FY_given_L_final_p": float(final["p_value"]),
        "I_LY_given_F_final": float(h["I_LY_given_F"][-1]),
        "I_LY_given_F_final_mm": float(retained["statistic"]),
        "I_LY_given_F_final_p": float(retained["p_value"]),
        "retention": mu_final / i_ly if i_ly > 1e-9 else None,
        "retention_boot": _pct(boot["retention"]),
        "test_accuracy_final": float(h["test_accuracy"][-1]),
        "train_accuracy_final": float(h["train_accuracy"][-1]),
        "linear_test_accuracy": lin_test,
        "linear_train_accuracy": lin_train,
        "zero_error_step": int(h["step"][reached[0]]) if reached.size else None,
        "steps_run": int(h["step"][-1]),
    }


def _pct(v: np.ndarray) -> list[float | None]:
    v = v[np.isfinite(v)]
    return [float(np.percentile(v, 5)), float(np.percentile(v, 95))] if v.size else [None, None]


# ------------------------------------------------------------------------------ the study


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Train every task × network × seed, write results.nc and figures, return the summary."""
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
        l_test = predict_l(data.x_test).astype(jnp.int32)
        y_test = data.y_test.astype(jnp.int32)
        lin_test, i_ly = np.asarray(_linear_information(l_test, y_test)).tolist()
        lin_train = float(_accuracy(predict_l(data.x_train), data.y_train))
        for ni, network in enumerate(c.networks):
            if network == "cnn" and not cnn_applies(data):
                skipped.append(f"{task}/cnn: inputs {data.input_shape} are not a sequence/image")
                continue
            for seed in seeds(c):
                key = jax.random.fold_in(jax.random.key(seed), 100 * ti + ni)  # the init
                h = train_and_measure(c, data, task, network, l_test, key=key, seed=seed,
                                      progress=progress, devices=devices)  # fmt: skip
                name = f"{task}/{network}/{seed}"
                s = analyse(h, i_ly, lin_test, lin_train, l_test, y_test, c,
                            key=jax.random.fold_in(key, 7))  # fmt: skip
                s["linear_grad_norm"] = float(lin["grad_norm"])  # ~0: L fitted to convergence
                s["linear_iterations"] = int(lin["iterations"])
                s["n_test"] = int(data.n_test)
                histories[name] = h
                per_run[name] = {"I_LY": i_ly, "linear_test_accuracy": lin_test}
                summary.setdefault(task, {}).setdefault(network, {})[str(seed)] = s
    if skipped:
        summary["skipped"] = skipped
    summary["T0_rule"] = (
        f"first record where the Miller-Madow I(F;Y|L) exceeds {EXPLAINED_MARGIN}*I(F;Y), among "
        f"the records with I(F;Y) >= {c.t0_floor:g}/(n ln 2) bits; null: never. "
        f"T0_significance (reported): the first of the same records where the permutation test "
        f"of I(F;Y|L) = 0 rejects at family-wise level {c.alpha} (Bonferroni)"
    )
    summary["claims"] = claims(summary, c)
    ds = _dataset(histories, per_run, summary)
    write_dataset(store.results_path, ds)
    figures(ds, store)
    return summary


def _dataset(histories, per_run, summary) -> xr.Dataset:
    names = list(histories)
    length = max(len(h["step"]) for h in histories.values())
    pad = lambda a: np.concatenate([a, np.full(length - len(a), np.nan)])  # noqa: E731
    keys = ("step", "epoch", "test_accuracy", "train_accuracy", "I_FY", "mu", "I_LY_given_F",
            "I_FY_given_L", "I_FY_given_L_mm", "p_value")  # fmt: skip
    dv: dict[str, tuple[tuple[str, ...], np.ndarray]]
    dv = {k: (("run", "record"), np.stack([pad(histories[n][k]) for n in names])) for k in keys}
    for k in ("I_LY", "linear_test_accuracy"):
        dv[k] = (("run",), np.array([per_run[n][k] for n in names]))
    runs = [summary[n.split("/")[0]][n.split("/")[1]][n.split("/")[2]] for n in names]
    for k in ("T0", "T_L"):
        dv[k] = (("run",), np.array([np.nan if r[k] is None else r[k] for r in runs], float))
    return xr.Dataset(
        dv,
        coords={"run": names, "record": np.arange(length)},
        attrs={"study": NAME, "units": "bits (log base 2), plug-in estimates on the test set"},
    )
