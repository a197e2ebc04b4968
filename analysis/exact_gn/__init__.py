"""The exact Gauss-Newton study: fast fitting, generalisation and laziness (PAPERS.md §2).

A RevMLP is trained with exact Gauss-Newton, Adam and SGD through the engine
(`lazyrich.train.train`; seeds and Adam/SGD learning rates are vmapped axes), in a full-batch
setting (the first `full_batch` training examples, one step per epoch), a mini-batch setting
(all `n_train` examples, batches of `batch`) and a rank setting (GN with the paper's linear or
a ReLU first block). Modules: `config` (options, presets, data, model), `run` (the engine calls and
measures), `summary` (headline numbers, matched-loss comparison, saturation ratio), `claims`
(`declare`: the claims for a config, declared before any run; `judge_claims`: their rows
through `lazyrich.evidence`), `figures`, `sizing` (the plan's seed sizing and wall time).
"""

from .claims import declare as declare
from .claims import judge_claims as judge_claims
from .config import DESCRIPTION as DESCRIPTION
from .config import NAME as NAME
from .config import PRESETS as PRESETS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import build_model as build_model
from .config import input_dim as input_dim
from .config import load_data as load_data
from .config import validate as validate
from .run import learning_rates as learning_rates
from .run import relative_change as relative_change
from .run import run as run
from .sizing import sizing as sizing
from .summary import MATCH_TOLERANCE as MATCH_TOLERANCE
from .summary import common_level as common_level
from .summary import epochs_to_level as epochs_to_level
from .summary import matched_train_loss as matched_train_loss
from .summary import mismatch as mismatch
from .summary import saturation_ratio as saturation_ratio
from .summary import summarize as summarize
