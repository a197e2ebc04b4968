"""The γ–η study: optimal learning rate across feature-learning strength (PAPERS.md §1, issue 4).

Per case (task × loss × architecture × depth L), a centred μP MLP (or, on the image-shaped
mnist1d, the paper's CNN) f = (f_θ − f_θ0)/γ is trained by one-pass
SGD at learning rate η0·N over a γ grid, with the paper's η protocol (`protocol`):
a short probe over the whole η range finds each γ's divergence boundary, then the main sweep
runs a per-γ window of η (a `(n_gamma, n_eta)` grid) below it, as one vmapped program per
chunk, in float64 where γ < 1e-2. From it: η*(γ) and η_max(γ) with Bayesian broken-power-law
fits, the sharpness at η*(γ) along training, the ultra-rich loss curves with their plateaus,
drops and time collapse, and the deep-linear toy theory against its simulation.

The claims (`claims.declare`, judged by `lazyrich.evidence`) are measured per seed: each
seed's η*(γ) and η_max(γ), its sharpness at its own η*, and a broken power law fitted per seed
(`per_seed`); the interval runs over the seeds.

Modules: `config` (options, presets, validation, cases), `setup` (streams and models),
`protocol` (the η lattice and read-outs), `run` (the sweeps, results.nc, summary),
`analyse` (one case's read-outs), `per_seed` (the claims' per-seed read-outs), `sharpness`
(Lanczos sharpness by the engine), `fits`, `dynamics` (plateaus, drops, collapse), `collapse`
(the time-collapse runs), `toy` (deep-linear theory), `claims`, `figures`.
"""

from .claims import declare as declare
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import case_label as case_label
from .config import cases_of as cases_of
from .config import validate as validate
from .run import run as run
from .sizing import sizing as sizing
