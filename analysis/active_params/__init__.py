"""Active parameters and layer-wise sparse SGD (PAPERS.md §4, Li & Banerjee 2021).

MLPs of several widths and the CNN are trained with plain SGD from a fixed initialisation.
Per network: which parameters moved most (global top-k% by activity score) and how they spread
over the layers; the test accuracy after resetting the active k% to their initial values,
against a random k% and the least-changed k%. On one *focus* network: static layer-wise
sparse SGD (only some layers trained) and probabilistic LWS-SGD (the top layers every step,
the whole net with probability p), with the wall time of PLWS training against SGD training
at equal steps.

Every training run is one call of the engine (`lazyrich.train.train`). Modules: `_config`
(options, data, networks), `_run` (engine calls and measures), `_summary` (headline numbers
and claims), `_figures`.
"""

from ._config import DESCRIPTION as DESCRIPTION
from ._config import NAME as NAME
from ._config import PRESETS as PRESETS
from ._config import RULES as RULES
from ._config import SCORES as SCORES
from ._config import TITLE as TITLE
from ._config import Config as Config
from ._config import build_network as build_network
from ._config import load_data as load_data
from ._config import network_names as network_names
from ._config import num_layers as num_layers
from ._config import parse_layers as parse_layers
from ._config import seeds as seeds
from ._config import validate as validate
from ._run import active_mask as active_mask
from ._run import control_strata as control_strata
from ._run import engine_run as engine_run
from ._run import num_steps as num_steps
from ._run import plws_full_fraction as plws_full_fraction
from ._run import reinit_accuracies as reinit_accuracies
from ._run import reinit_masks as reinit_masks
from ._run import run as run
from ._run import run_of as run_of
from ._run import top_change_share as top_change_share
from ._summary import claims as claims
from ._summary import summarize as summarize
