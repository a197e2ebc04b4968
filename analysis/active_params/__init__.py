"""Active parameters and layer-wise sparse SGD (PAPERS.md §4, Li & Banerjee 2021).

MLPs of several widths and the CNN are trained with plain SGD from a fixed initialisation.
Per network: which parameters moved most (global top-k% by activity score) and how they spread
over the layers; the test accuracy after resetting the active k% to their initial values,
against a random k% and the least-changed k%. On one *focus* network: static layer-wise
sparse SGD (only some layers trained) and probabilistic LWS-SGD (the top layers every step,
the whole net with probability p) at equal steps and at equal wall time, with the per-step
cost of top-only LWS and PLWS against SGD from interleaved timing repeats.

Every training run is one call of the engine (`lazyrich.train.train`). Modules: `config`
(options, data, networks), `run` (engine calls, timing and measures), `summary` (headline
numbers), `claims` (the claims, declared from the options alone, judged by
`lazyrich.evidence`), `sizing` (the plan's seed sizing and notes), `figures`.
"""

from .claims import claims as claims
from .claims import declare as declare
from .claims import per_unit as per_unit
from .claims import step_ratios as step_ratios
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import RULES as RULES
from .config import SCORES as SCORES
from .config import TITLE as TITLE
from .config import Config as Config
from .config import build_network as build_network
from .config import load_data as load_data
from .config import network_names as network_names
from .config import num_layers as num_layers
from .config import parse_layers as parse_layers
from .config import seeds as seeds
from .config import validate as validate
from .run import active_mask as active_mask
from .run import control_strata as control_strata
from .run import engine_run as engine_run
from .run import equal_time_steps as equal_time_steps
from .run import num_steps as num_steps
from .run import plws_full_fraction as plws_full_fraction
from .run import reinit_accuracies as reinit_accuracies
from .run import reinit_masks as reinit_masks
from .run import run as run
from .run import run_of as run_of
from .run import time_steps as time_steps
from .run import top_change_share as top_change_share
from .sizing import sizing as sizing
from .sizing import t_width as t_width
from .summary import bottom_enrichment as bottom_enrichment
from .summary import summarize as summarize
