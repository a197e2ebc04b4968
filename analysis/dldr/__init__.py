"""The DLDR study: training in a tiny subspace of the SGD trajectory (PAPERS.md §3).

Modules: `config` (options, presets, validation, data, network), `run` (the engine calls:
SGD with trajectory sampling, PCA, P-SGD and P-BFGS for every d and seed, the controls),
`summary` (the results Dataset and per-seed headline numbers), `claims` (`declare`: the claims
for a config, declared before any run; `judge_claims`: their rows through `lazyrich.evidence`),
`figures`, `walk` (the random-walk reference of the low-dimension claims), `sizing`
(the plan's seed sizing).
"""

from .claims import declare as declare
from .claims import judge_claims as judge_claims
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import Network as Network
from .config import build_network as build_network
from .config import initial_params as initial_params
from .config import load as load
from .config import num_samples as num_samples
from .config import sample_steps as sample_steps
from .config import validate as validate
from .run import Subspace as Subspace
from .run import padded as padded
from .run import pbfgs_step as pbfgs_step
from .run import psgd_step as psgd_step
from .run import random_subspace as random_subspace
from .run import run as run
from .run import sgd_with_samples as sgd_with_samples
from .run import subspace_runs as subspace_runs
from .run import tuned_sgd as tuned_sgd
from .sizing import sizing as sizing
from .summary import epochs_to as epochs_to
from .summary import pick_tuned as pick_tuned
from .summary import summarize as summarize
from .walk import isotropic_walk_explained_variance as isotropic_walk_explained_variance
from .walk import step_norms as step_norms
from .walk import walk_explained_variance as walk_explained_variance
