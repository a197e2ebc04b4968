"""The kernel-limits study: finite μP networks beside both infinite-width theories at every γ.

For each dataset and seed (its own data draw and initialisations), centred μP MLPs at several
widths are trained by full-batch gradient descent at every γ and set beside the DMFT of kernel
dynamics (`lazyrich.theory.dmft`: the N → ∞ limit at fixed γ, features move) and the lazy
closed form with the infinite-width NTK (the γ → 0 limit), at the same (γ, η0, step).
Conventions are those of `lazyrich.theory` (`half_mse`, rate η0·N, DMFT γ0 = γ).

The claims (`claims.declare`, judged by `lazyrich.evidence` over seeds): the network approaches
the DMFT as the width grows (a per-seed width exponent, theory −1/2, and the issue's
"at least 2× smaller" as a row), the DMFT parts from the NTK at a γ below 1 and at γ = 1 is
farther from it than the widest network is from the DMFT, and the widest network's final NTK
aligns with yyᵀ more at the largest γ than at the smallest.

Modules: `config` (options, presets, data, learning rates), `case` (the theories and networks
per dataset and seed), `run` (the entry point: seeds, results.nc, summary), `claims`,
`figures`, `sizing` (the plan's seed sizing and notes).
"""

from .case import run_case as run_case
from .claims import declare as declare
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import load_data as load_data
from .config import record_steps as record_steps
from .config import validate as validate
from .run import run as run
from .sizing import sizing as sizing
