"""The lazy-limit study: finite-width centred μP MLPs against closed-form kernel dynamics.

For each dataset and width, one initialisation of a centred μP MLP `f = (net − net₀)/γ` is
trained by full-batch gradient descent at every γ and its train and test loss curves are
compared with the closed-form kernel-regression dynamics (exact discrete GD) for two kernels:
the empirical NTK of the network at initialisation, and the infinite-width NTK of its twin.
Both come from one call per (dataset, width): `lazyrich.theory.lazy_vs_network`, which trains
with the engine (`lazyrich.train.train`, γ vmapped, float64 per γ).

Conventions (`lazyrich.theory`): loss `L = 1/(2P) Σ (f − y)²` (one output; the engine's
`"half_mse"`), step `θ ← θ − η ∇L` with the μP learning rate `η = η0 · N`, and the theory is fed
the unscaled network's kernel `Θ_net` with `eta = effective_rate(η0, gamma=γ, lr_multiplier=N)
= η0 N/γ²`. `η0(γ) = lr · P/λ_max(N Θ_mup^∞) · s(γ)` with `s = γ²` for γ ≤ 1 and `γ^(2/L)`
above (the lazy and ultra-rich learning-rate scalings of PAPERS.md §1), so for γ ≤ 1 the
infinite-width theory is the same curve at every γ: its fastest mode contracts by `1 − lr` per
step.

The claims (`claims.declare`, judged by `lazyrich.evidence`) are fitted per seed: the γ
exponent of the empirical-NTK gap (where it is not saturated) and the width exponent of the
infinite-width gap, each followed by its control row (the γ exponent over γ ≤ 1e-2; the width
exponent of the init NTK's distance to the infinite one), with an interval over seeds;
`sizing` gives the plan's seed arithmetic. The summary keeps every seed (`per_seed`).

Modules: `config` (options, presets, data, schedules), `case` (the engine/theory call per
dataset and width), `run` (the entry point: seeds, results.nc, summary), `claims`, `figures`.
"""

from .case import predictions as predictions
from .case import relative_gap as relative_gap
from .case import run_case as run_case
from .claims import declare as declare
from .claims import sizing as sizing
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import gamma_grid as gamma_grid
from .config import kernel_steps as kernel_steps
from .config import load_data as load_data
from .config import record_steps as record_steps
from .config import validate as validate
from .run import expectations as expectations
from .run import run as run
