"""The DLDR study's claims (PAPERS.md §3), declared from the config before any run.

Every claim is measured once per seed — a fraction of the trajectory's variance, a difference
DLDR minus a control, a count of epochs, a train accuracy — and judged by `lazyrich.evidence`
(90% Student-t interval over seeds, the one verdict rule). Accuracy claims share one margin,
`ACCURACY_MARGIN`; epoch counts are whole epochs (`resolution=1`). Each control is a row of its
own, next to the claim it controls: the matched random walk (low dimension), the random
subspace and the continued SGD (P-BFGS matches SGD), SGD memorising (label noise).
"""

from __future__ import annotations

import numpy as np

from lazyrich import evidence

from .config import Config, num_samples
from .walk import isotropic_walk_explained_variance

PAPER = "Li et al., TPAMI 2022 (DLDR, arXiv 2103.11154)"
ACCURACY_MARGIN = 0.02
ACCURACY_REASON = (
    "two points of test accuracy: a smaller gap between two training methods is not one a "
    "practitioner would act on"
)
EPOCH_MARGIN = 1.0
MEMORISED = 0.9  # label-noise control: SGD's final train accuracy on the noisy labels
NUM_CLASSES = 10  # every dataset of the study (mnist1d, mnist, fashion-mnist, cifar10)
FIGURE = "figures/accuracy_vs_epoch.png"
VARIANCE_FIGURE = "figures/explained_variance.png"


def variance_margin(c: Config) -> float:
    """Half the variance an isotropic random walk of the config's `t` samples leaves outside
    its top `max(ds)` directions: the margin of the low-dimension claims."""
    return (1 - isotropic_walk_explained_variance(num_samples(c), max(c.ds))) / 2


def declare(c: Config) -> list[evidence.Claim]:
    """The study's claims for config `c` (the label-noise pair only with `c.label_noise > 0`).

    **Arguments:**

    - `c`: the study's config.

    **Returns:** the claims, in the order `judge_claims` measures them.
    """
    dmax = max(c.ds)
    cap = max(c.subspace_epochs, c.tuned_epochs) + 1
    t = num_samples(c)
    walk = isotropic_walk_explained_variance(t, dmax)
    vm = variance_margin(c)
    v_reason = (
        f"half the variance a random walk of {t} samples leaves outside its top {dmax} "
        f"directions, (1 − {walk:.4f})/2: a trajectory within it is no lower-dimensional than "
        "a walk (Antognini & Sohl-Dickstein 2018)"
    )
    out = [
        evidence.Claim(
            id="trajectory_low_dimensional",
            paper=PAPER,
            claim=f"the training trajectory lies in a low-dimensional space: its top {dmax} "
            f"principal directions (PCA of {t} ≥ 2·{dmax} samples of the SGD run) explain more "
            f"of its variance than those of an isotropic random walk of {t} samples "
            f"({walk:.4f}) (per seed: the fraction explained)",
            theory=walk,
            margin=vm,
            reason=v_reason,
            kind="above",
            figure=VARIANCE_FIGURE,
            theory_text=f"random walk {walk:.4f}",
        ),
        evidence.Claim(
            id="trajectory_lower_dimensional_than_matched_walk",
            paper=PAPER,
            claim=f"control: the trajectory's top {dmax} directions explain more of its "
            "variance than those of a high-dimensional random walk with the trajectory's own "
            "step lengths (the same speed, independent directions) (per seed: trajectory minus "
            "matched walk, fraction explained)",
            theory=0.0,
            margin=vm,
            reason=v_reason,
            kind="above",
            figure=VARIANCE_FIGURE,
        ),
        evidence.Claim(
            id="pbfgs_matches_tuned_sgd",
            paper=PAPER,
            claim=f"P-BFGS in the top-{dmax} trajectory directions reaches a test accuracy "
            "comparable to that of a well-tuned SGD (per seed: P-BFGS minus tuned SGD, final "
            "test accuracy)",
            theory=0.0,
            margin=ACCURACY_MARGIN,
            reason=ACCURACY_REASON,
            figure=FIGURE,
        ),
        evidence.Claim(
            id="trajectory_beats_random_subspace",
            paper=PAPER,
            claim=f"control: the top-{dmax} trajectory directions are special: P-BFGS there "
            f"reaches a higher test accuracy than P-BFGS in a random {dmax}-dimensional "
            "subspace through the same w0 (per seed: trajectory minus random, final test "
            "accuracy)",
            theory=0.0,
            margin=ACCURACY_MARGIN,
            reason=ACCURACY_REASON,
            kind="above",
            figure=FIGURE,
        ),
        evidence.Claim(
            id="pbfgs_matches_sgd_continued",
            paper=PAPER,
            claim=f"control: P-BFGS (d={dmax}, {c.subspace_epochs} epochs) reaches the test "
            f"accuracy of the sampling SGD run continued for the same {c.subspace_epochs} "
            "epochs (per seed: P-BFGS minus continued SGD, final test accuracy)",
            theory=0.0,
            margin=ACCURACY_MARGIN,
            reason=ACCURACY_REASON,
            figure=FIGURE,
        ),
        evidence.Claim(
            id="psgd_matches_tuned_sgd",
            paper=PAPER,
            claim=f"P-SGD in the top-{dmax} trajectory directions ({c.subspace_epochs} epochs) "
            "reaches a test accuracy comparable to that of a well-tuned SGD (per seed: P-SGD "
            "minus tuned SGD, final test accuracy)",
            theory=0.0,
            margin=ACCURACY_MARGIN,
            reason=ACCURACY_REASON,
            figure=FIGURE,
        ),
        evidence.Claim(
            id="pbfgs_fewer_epochs",
            paper=PAPER,
            claim=f"P-BFGS (d={dmax}) needs fewer epochs than the tuned SGD to reach "
            f"{c.target_fraction} × the tuned SGD's final test accuracy (per seed: tuned-SGD "
            f"epochs minus P-BFGS epochs; never reached counts as {cap})",
            theory=0.0,
            margin=EPOCH_MARGIN,
            reason="one epoch, the granularity at which the epochs are counted (test accuracy "
            "is evaluated once per epoch)",
            kind="above",
            figure=FIGURE,
            resolution=1.0,
        ),
    ]
    if c.label_noise > 0:
        clean_fit = 1 - c.label_noise * (1 - 1 / NUM_CLASSES)
        out += [
            evidence.Claim(
                id="sgd_memorises_noisy_labels",
                paper=PAPER,
                claim=f"control: with {c.label_noise:.0%} of the training labels "
                f"randomised, SGD ({c.noise_epochs} epochs) memorises them (per seed: its final "
                "train accuracy on the noisy labels)",
                theory=MEMORISED,
                margin=ACCURACY_MARGIN,
                reason=f"the study's accuracy margin; {MEMORISED} lies between 1 (every noisy "
                f"label fitted) and {clean_fit:.2f} (only the true labels fitted)",
                kind="above",
                figure="figures/label_noise.png",
            ),
            evidence.Claim(
                id="robust_to_label_noise",
                paper=PAPER,
                claim=f"with {c.label_noise:.0%} of the training labels randomised, DLDR "
                f"(P-BFGS, d={dmax}) reaches a higher test accuracy than SGD, which memorises "
                "the noise (per seed: P-BFGS minus SGD, final test accuracy)",
                theory=0.0,
                margin=ACCURACY_MARGIN,
                reason=ACCURACY_REASON,
                kind="above",
                figure="figures/label_noise.png",
            ),
        ]
    return out


def _epochs(values: list[int | None], cap: int) -> np.ndarray:
    return np.asarray([cap if e is None else e for e in values], np.float64)


def judge_claims(s: dict, c: Config) -> list[dict]:
    """The claims-table rows: each claim of `declare(c)` judged on its per-seed values.

    **Arguments:**

    - `s`: the summary's headline numbers (`summary.summarize`).
    - `c`: the study's config.

    **Returns:** one `evidence.judge` row per declared claim, in order.
    """
    dmax = max(c.ds)
    pb = np.asarray(s["d"][str(dmax)]["pbfgs_test_accuracy"], np.float64)
    tuned = np.asarray(s["tuned_sgd"]["test_accuracy"], np.float64)
    cap = max(c.subspace_epochs, c.tuned_epochs) + 1  # "never reached" counts as this
    e_pb = _epochs(s["d"][str(dmax)]["pbfgs_epochs_to_target"], cap)
    e_sgd = _epochs(s["tuned_sgd"]["epochs_to_target"], cap)
    rnd = np.asarray(s["random_pbfgs_test_accuracy"], np.float64)
    ev = np.asarray(s["d"][str(dmax)]["explained_variance"], np.float64)
    walk = np.asarray(s["d"][str(dmax)]["matched_walk_explained_variance"], np.float64)
    cont = np.asarray(s["sgd_continued_test_accuracy"], np.float64)
    ps = np.asarray(s["d"][str(dmax)]["psgd_test_accuracy"], np.float64)
    samples = {
        "trajectory_low_dimensional": ev,
        "trajectory_lower_dimensional_than_matched_walk": ev - walk,
        "pbfgs_matches_tuned_sgd": pb - tuned,
        "trajectory_beats_random_subspace": pb - rnd,
        "pbfgs_matches_sgd_continued": pb - cont,
        "psgd_matches_tuned_sgd": ps - tuned,
        "pbfgs_fewer_epochs": e_sgd - e_pb,
    }
    notes = {
        "trajectory_lower_dimensional_than_matched_walk": "matched walk's fraction (seed "
        f"mean): {float(np.mean(walk)):.6f}; trajectory's: {float(np.mean(ev)):.6f}",
        "pbfgs_matches_sgd_continued": f"SGD continued: {c.sample_epochs} sampling epochs + "
        f"{c.subspace_epochs}, constant lr {c.lr:g}; P-BFGS restarts from w0",
        "pbfgs_matches_tuned_sgd": f"tuned SGD: lr {s['tuned_sgd']['lr']:g} (best of "
        f"{list(c.tuned_lrs)} by mean final test accuracy, {c.tuned_epochs} epochs, step "
        f"decay); P-BFGS: {c.subspace_epochs} epochs",
        "pbfgs_fewer_epochs": f"P-BFGS epochs exclude the {c.sample_epochs} epochs of the "
        f"sampling phase (as the paper counts); including them the mean difference is "
        f"{float(np.mean(e_sgd - e_pb)) - c.sample_epochs:.3g}",
    }
    if "label_noise" in s:
        n = s["label_noise"]
        memorised = np.asarray(n["sgd_final_train_accuracy"], np.float64)
        samples["sgd_memorises_noisy_labels"] = memorised
        samples["robust_to_label_noise"] = np.asarray(
            n["pbfgs_test_accuracy"], np.float64
        ) - np.asarray(n["sgd_final_test_accuracy"], np.float64)
        notes["robust_to_label_noise"] = (
            "a test of robustness only where SGD memorised the noisy labels "
            "(sgd_memorises_noisy_labels); SGD's best test accuracy over its epochs: "
            f"{float(np.mean(n['sgd_best_test_accuracy'])):.3f} (seed mean)"
        )
    return [
        evidence.judge(claim, samples.get(claim.id, []), note=notes.get(claim.id))
        for claim in declare(c)
    ]
