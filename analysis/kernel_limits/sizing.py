"""The kernel-limits plan's seed sizing and notes (`lazyrich plan kernel-limits`).

There is no committed evidence for this study. The per-seed standard deviations below come from
a timed piece of the evidence preset (seeds 0–3 of each dataset, linear, widths 128 → 2048,
run through `case.run_case` on the loaded development machine, 2026-12-05); the margins were
declared before it ran and were not changed by it.
"""

from __future__ import annotations

import math

from scipy import stats

from .claims import declare
from .config import Config

# per-seed sd over seeds 0–3 of the piece, per (dataset, claim)
PIECE_SD = {
    ("teacher", "width-exponent"): 0.196,
    ("teacher", "width-2x"): 0.704,
    ("teacher", "parting-gamma"): 0.275,
    ("teacher", "not-ntk"): 0.167,
    ("teacher", "alignment"): 0.018,
    ("mnist1d", "width-exponent"): 0.305,
    ("mnist1d", "width-2x"): 1.078,
    ("mnist1d", "parting-gamma"): 0.261,
    ("mnist1d", "not-ntk"): 0.180,
    ("mnist1d", "alignment"): 0.006,
}
PIECE_SEEDS = 4
# CPU seconds measured in the piece (loaded machine; a quiet core runs them no slower)
IMPORT_S = 9.4  # python, jax, lazyrich
COMPILE_S = 27.3  # first (dataset, seed): the five widths' engine programs, the DMFT, the NTK
CASE_S = 1.5  # every further (dataset, seed): 5 widths × 6 γ networks, DMFT, NTK


def sizing(c: Config) -> tuple[dict[str, str], str | None]:
    """Per claim id, the expected 90% t-interval width against 2 × margin (or, for a bound,
    the expected half-width); and the notes: what the preset does and its expected wall time.

    **Arguments:**

    - `c`: the config the plan is written for.

    **Returns:** `(sizes, notes)`.
    """
    n = c.seeds
    t = float(stats.t.ppf(0.95, n - 1)) if n >= 2 else math.inf
    sizes = {}
    for claim in declare(c):
        d, cid = claim.id.split(" ", 1)
        sd = PIECE_SD.get((d, cid))
        if sd is None:
            sizes[claim.id] = "no spread measured for this dataset/claim"
            continue
        width = 2 * t * sd / math.sqrt(n)
        src = f"per-seed sd {sd:.3g} in a {PIECE_SEEDS}-seed piece of the evidence preset"
        if claim.kind == "equal":
            sizes[claim.id] = (
                f"{src} → expected 90% t-width 2·t(0.95,{n - 1})·sd/√{n} = {width:.3g}, "
                f"against 2 × margin = {2 * claim.margin:.3g}"
            )
        else:
            res = f", at least the grid's {claim.resolution:.3g}" if claim.resolution else ""
            sizes[claim.id] = (
                f"{src} → expected 90% t-half-width t(0.95,{n - 1})·sd/√{n} = {width / 2:.3g}"
                f"{res}: decided when the mean lies that far beyond the bound "
                f"{claim.theory:.3g} {'+' if claim.kind == 'above' else '−'} {claim.margin:.3g}"
            )
    cases = len(c.datasets) * n
    cpu = IMPORT_S + COMPILE_S + (cases - 1) * CASE_S
    notes = (
        f"Each of the {n} seeds draws its own data (teacher: Gaussian inputs in {c.teacher_dim} "
        f"dimensions; mnist1d: a {c.n_train}+{c.n_test}-point subset) and initialisations, and "
        f"trains {c.activation} depth-{c.depth} centred μP networks at widths "
        f"{', '.join(map(str, c.widths))} and γ {', '.join(f'{g:.3g}' for g in c.gammas)} for "
        f"{c.steps} full-batch GD steps (float64), beside the DMFT (exact for linear) and the "
        f"NTK closed form. Time on 2 quiet cores: {IMPORT_S} s import + {COMPILE_S} s for the "
        f"first (dataset, seed) (compilation; the two datasets share programs) + "
        f"{cases - 1} × {CASE_S} s for the other (dataset, seed) cases = {cpu:.0f} CPU s, "
        f"measured as CPU time on the loaded machine; at most about {2 * cpu / 60:.0f} min "
        "wall even without any parallel speed-up and with 2× overheads, well inside the 25-minute "
        "budget. Why linear: the tanh DMFT is solved by sampling, and its Monte-Carlo error "
        "at P = Q = 32, γ = 1 (measured: 0.0024 on the teacher's test loss with S·B = 4096 × 4 "
        "sites; 0.040 on mnist1d with 16384 × 4) is as large as the N = 2048 networks' "
        "O(1/√N) distance to the DMFT that the width claims measure, so it would floor the "
        "width exponent; the linear DMFT is exact. The paper preset runs tanh with S·B = 2^19 "
        "(an accelerator). This is the study's first evidence run (new claims, issue 27)."
    )
    return sizes, notes
