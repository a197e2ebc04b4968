"""The exact-gn study's seed sizing for a plan (`lazyrich plan exact-gn`): per claim, the
expected 90% interval width against 2 × margin, from the per-seed spread of the committed
evidence (`docs/evidence/before-plans/exact-gn`, code of commit eb234e8: MNIST 8,000/2,000,
RevMLP h = 1024, 3 seeds), and the expected wall time. The spreads size seeds only; no margin
is set from them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .claims import ACCURACY_MARGIN, EPOCH_MARGIN, FITS_BATCH, SIMILARITY_MARGIN, declare
from .config import Config

# Per-seed values of the committed evidence (summary.json and its claims' notes, seeds 0–2).
OLD_EVIDENCE: dict[str, tuple[list[float], str]] = {
    "full_batch_gn_fewer_epochs": ([2.0, 2.0, 1.0], "faster baseline's epochs minus GN's"),
    "gn_lazier_ntk_at_matched_loss": ([-0.0240, -0.0057, -0.0227], "NTK similarity GN − Adam"),
    "gn_lazier_cka_at_matched_loss": ([0.0199, 0.0293, 0.0288], "block CKA GN − Adam"),
    "mini_batch_gn_saturates": ([0.5788, 0.5591, 0.5793], "saturation ratio R"),
}


def t_width(sd: float, n: int) -> float:
    """Expected width of a 90% Student-t interval over `n` units of spread `sd`."""
    return 2 * float(stats.t.ppf(0.95, n - 1)) * sd / math.sqrt(n)


def _line(values: list[float], what: str, n: int, margin: float) -> str:
    sd = float(np.std(values, ddof=1))
    return (
        f"per-seed sd {sd:.3g} of {what} in the committed evidence ({len(values)} seeds) → "
        f"expected 90% t-width 2·t(0.95,{n - 1})·sd/√{n} = {t_width(sd, n):.3g} with {n} "
        f"seeds, against 2 × margin = {2 * margin:.3g}"
    )


# CPU seconds (process time, compilation excluded) measured on this machine with the evidence
# sizes (RevMLP 784, h = 1024, 2 blocks): one exact GN step on 1,000–1,024 examples 0.8; one
# probe measurement (the full NTK of 16 examples × 10 outputs, K·v, block outputs) 1.8; one
# Adam/SGD step on 1,024 examples 0.3; a forward pass over 1,024 examples 0.1. Checked against
# the committed run: these give 2,430 CPU-s for its preset, which reported 2,260 CPU-s.
GN_STEP, PROBE, GRAD_STEP, FORWARD = 0.8, 1.8, 0.3, 0.1
CORES_USED = 1.85  # the committed run: 2,260 CPU-s in 1,223 s of wall time
OVERHEAD_CPU = 130  # compilation of the engine calls, data, summary, figures


def cpu_seconds(c: Config) -> tuple[float, str]:
    """The expected CPU seconds of config `c` and the arithmetic behind them."""
    from .run import learning_rates, measure_epochs, setting_epochs

    n, parts, total = c.seeds, [], 0.0
    if "full" in c.settings:
        e = setting_epochs(c, "full")
        runs = sum(len(learning_rates(c, o, "full")) for o in c.optimizers)
        m = len(measure_epochs(c, e, "full"))
        evals = runs * (e + 1) * FORWARD * (c.full_batch + c.n_test) / 1024
        base = (runs - 1) * e * (GRAD_STEP + FORWARD)
        full = runs * m * PROBE + e * (GN_STEP + FORWARD) + base + evals
        parts.append(f"full {runs} runs × {m} measurements × {PROBE} + {e} GN steps + "
                     f"baselines and evaluations = {full:.0f}")  # fmt: skip
        total += full
    if "mini" in c.settings:
        e = setting_epochs(c, "mini")
        steps = e * (c.n_train // c.batch)
        runs = len(c.optimizers)
        m = len(measure_epochs(c, e, "mini"))
        evals = runs * (e + 1) * FORWARD * (c.n_train + c.n_test) / 1024
        mini = steps * (GN_STEP + FORWARD) + (runs - 1) * steps * (GRAD_STEP + FORWARD)
        mini += evals + runs * m * PROBE
        parts.append(f"mini {e} epochs × {c.n_train // c.batch} steps × ({GN_STEP} GN + "
                     f"{runs - 1} × {GRAD_STEP + FORWARD} baselines) + evaluations + "
                     f"{runs} × {m} measurements = {mini:.0f}")  # fmt: skip
        total += mini
    if "rank" in c.settings:
        e = c.epochs
        rank = 2 * ((e + 1) * PROBE + e * GN_STEP * (c.rank_batch / 1024) ** 2)
        parts.append(f"rank 2 runs = {rank:.0f}")
        total += rank
    cpu = n * total + OVERHEAD_CPU
    return cpu, f"per seed: {'; '.join(parts)} CPU-s; × {n} seeds + {OVERHEAD_CPU} = {cpu:.0f}"


# Per-seed values of the first preregistered run (plan 09fec75, seeds 0–4, every full-batch
# epoch measured) with the interpolated match computed post hoc from its results.nc (`summarize`
# with match = "interpolate"): for sizing only; that run's verdicts stay those of its own plan.
FIRST_RUN: dict[str, tuple[list[float], str]] = {
    "full_batch_gn_fewer_epochs": (
        [2.0, 2.0, 1.0, 2.0, 3.0],
        "faster baseline's epochs minus GN's",
    ),
    "matched_gap_interpolation_span": (
        [0.0339, 0.0171, 0.0134, 0.0163, 0.0040],
        "GN's + the better baseline's gap change across the bracket",
    ),
    "gn_generalises_worse_at_matched_loss": (
        [0.1590, 0.1139, 0.1480, 0.1383, 0.1074],
        "interpolated gap, GN minus the better baseline",
    ),
    "matched_similarity_interpolation_span": (
        [0.0119, 0.0140, 0.0133, 0.0118, 0.0125],
        "GN's + Adam's NTK-similarity / CKA change across the bracket",
    ),
    "gn_lazier_ntk_at_matched_loss": (
        [-0.0172, -0.0069, -0.0200, -0.0107, 0.0058],
        "interpolated NTK similarity GN − Adam",
    ),
    "gn_lazier_cka_at_matched_loss": (
        [0.0196, 0.0236, 0.0248, 0.0386, 0.0229],
        "interpolated block CKA GN − Adam",
    ),
}
FIRST_RUN_MARGINS = {
    "full_batch_gn_fewer_epochs": EPOCH_MARGIN,
    "matched_gap_interpolation_span": ACCURACY_MARGIN,
    "gn_generalises_worse_at_matched_loss": ACCURACY_MARGIN,
    "matched_similarity_interpolation_span": SIMILARITY_MARGIN,
    "gn_lazier_ntk_at_matched_loss": SIMILARITY_MARGIN,
    "gn_lazier_cka_at_matched_loss": SIMILARITY_MARGIN,
}


def _interpolated_sizing(c: Config) -> tuple[dict[str, str], str]:
    """The sizing of a plan with the interpolated match, from the first preregistered run."""
    n = c.seeds
    ids = {claim.id for claim in declare(c)}
    out = {
        cid: _line(values, what, n, FIRST_RUN_MARGINS[cid]).replace(
            "in the committed evidence", "in the first preregistered run (interpolated post hoc)"
        )
        for cid, (values, what) in FIRST_RUN.items()
        if cid in ids
    }
    for cid in ids - set(out):  # the mini-batch rows, when the plan runs them
        values, what = OLD_EVIDENCE.get(cid, ([], ""))
        out[cid] = (
            _line(values, what, n, 0.2 * c.plateau_tol)
            if values
            else "no per-seed spread needed: the first preregistered run measured 0.031 "
            f"[0.031, 0.032] against {FITS_BATCH} − its margin (decided by its mean)"
        )
    cpu, arithmetic = cpu_seconds(c)
    notes = (
        f"{c.dataset} (the 8,000/2,000 MNIST of ../shared/data: LAZYRICH_DATA or --data-dir), "
        f"RevMLP h = {c.hidden}, {c.blocks} blocks, cross-entropy, raw GN step; settings "
        f"{', '.join(c.settings)}; seeds {c.seed}–{c.seed + n - 1} ({n}). Why a second plan: the "
        "first preregistered run (plan 09fec75, seeds 0–4) matched the train loss at measured "
        "epochs within 2% and found such epochs for only 2 of 5 seeds (one full-batch step is one "
        "epoch, and Adam and SGD step past GN's levels), so its matched rows had n = 2. This plan "
        "reads every optimizer at the level by interpolation between the two epochs that bracket "
        "it (linear in log train loss, every epoch measured), at the lowest loss every optimizer "
        "reaches; two control rows bound what the interpolation can change (the change of each "
        "measure across its bracket, against the row's margin). New seeds (5 onwards), not the "
        "first run's, so that the rows are an independent replication; the sizing spreads come "
        "from the first run's data with this estimator applied post hoc (for sizing only: that "
        "run keeps its own plan's verdicts)."
        + (
            ""
            if "mini" in c.settings
            else " The mini-batch rows are not rerun (the first run decided them with 5 seeds)."
        )
        + " Expected wall time on 2 quiet cores: "
        f"{arithmetic} CPU-s / {CORES_USED} cores = {cpu / CORES_USED / 60:.0f} min."
    )
    return out, notes


def sizing(c: Config) -> tuple[dict[str, str], str | None]:
    """Per claim, the expected interval width against 2 × margin; and the plan's notes.

    **Arguments:**

    - `c`: the study's config.

    **Returns:** `({claim id: sentence}, notes)`.
    """
    if c.match == "interpolate":
        return _interpolated_sizing(c)
    n = c.seeds
    ids = {claim.id for claim in declare(c)}
    margins = {
        "full_batch_gn_fewer_epochs": EPOCH_MARGIN,
        "gn_generalises_worse_at_matched_loss": ACCURACY_MARGIN,
        "gn_lazier_ntk_at_matched_loss": SIMILARITY_MARGIN,
        "gn_lazier_cka_at_matched_loss": SIMILARITY_MARGIN,
        "mini_batch_gn_saturates": 0.2 * c.plateau_tol,
    }
    out = {
        cid: _line(values, what, n, margins[cid])
        for cid, (values, what) in OLD_EVIDENCE.items()
        if cid in ids
    }
    if "gn_generalises_worse_at_matched_loss" in ids:
        out["gn_generalises_worse_at_matched_loss"] = (
            "no committed spread of the accuracy gap (the committed row compared test losses, "
            "GN minus the better baseline per seed 0.231, 0.215, 0.222: sd 0.008); with a "
            f"per-seed sd of about 0.01 the expected 90% t-width over {n} seeds is "
            f"{t_width(0.01, n):.3g}, against 2 × margin = {2 * ACCURACY_MARGIN:.3g}"
        )
    if "matched_train_losses_agree" in ids:
        out["matched_train_losses_agree"] = (
            "no committed spread: the committed run matched at the first epoch below a common "
            "level, and its worst per-seed distances from that level were 0.20, 0.18, 0.19 "
            "(GN 0.39–0.46, Adam 0.40–0.48, SGD 0.49–0.50): the reason for the level search; "
            f"the row agrees only if the 90% interval over {n} seeds lies below 2%"
        )
    if "mini_batch_gn_step_fits_its_batch" in ids:
        out["mini_batch_gn_step_fits_its_batch"] = (
            "no committed per-seed spread; the committed mean drop per GN step at lr 0.1 was "
            f"0.041 over the second half (0.047 over all steps), far below {FITS_BATCH} − its "
            "margin, so the row is expected to be decided by its mean, not its width"
        )
    cpu, arithmetic = cpu_seconds(c)
    wall = cpu / CORES_USED
    notes = (
        f"{c.dataset} (the 8,000/2,000 MNIST of ../shared/data: LAZYRICH_DATA or --data-dir), "
        f"RevMLP h = {c.hidden}, {c.blocks} blocks, cross-entropy, raw GN step, {n} seeds (was "
        "3). Changed from the committed evidence (issue 25): the matched-loss level is searched "
        "per seed so that every optimizer has a measured epoch within 2% of it, and a control "
        "row reports the worst distance per seed (the old rule matched GN at 0.39–0.46 against "
        f"Adam 0.40–0.48 and SGD 0.49–0.50); mini-batch at the paper's rate {c.gn_lr_mini} and "
        f"batch {c.batch}, {c.epochs_mini or c.epochs} epochs (was 8 of batch 1024), with a row "
        "for the per-step batch-loss drop (the saturation mechanism: each step fits its batch); "
        "the probe's initial NTK is computed once per seed (was at every measurement: half the "
        "cost of the old run); the rank setting (no claim) is left out of this preset; the "
        f"tuning grids are the paper's rate and one more (Adam {c.adam_grid}, SGD {c.sgd_grid}: "
        "the committed run's 1e-2 and 1.0 diverged). Expected wall time on 2 quiet cores: "
        f"{arithmetic} CPU-s / {CORES_USED} cores = {wall / 60:.0f} min."
    )
    return out, notes
