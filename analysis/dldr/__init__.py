"""The DLDR study: training in a tiny subspace of the SGD trajectory (PAPERS.md §3).

Modules: `config` (options, presets, validation, data, networks), `run` (the engine calls:
SGD with trajectory sampling, PCA, P-SGD and P-BFGS), `summary` (headline numbers and the
results Dataset), `figures`.
"""

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
from .run import flat_params as flat_params
from .run import padded as padded
from .run import run as run
from .run import sgd_with_samples as sgd_with_samples
from .run import subspace_runs as subspace_runs
from .summary import condition_summary as condition_summary
from .summary import epochs_to as epochs_to
