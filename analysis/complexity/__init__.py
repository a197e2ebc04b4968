"""SGD learns functions of increasing complexity (PAPERS.md §5, Nakkiran et al. 2019).

Binary tasks (mnist1d, MNIST and CIFAR-10 with label = class > 4, and a 2-D "sinusoidal ball"
with label noise, `lazyrich.data.ball`), an MLP and the CNN of §5 (`lazyrich.models.PaperCNN`),
plain SGD towards zero training error. L is the best linear classifier on the same training
data (logistic regression to convergence). At log-spaced early steps and at every epoch end
the network's hard test predictions F_t (a measure of one engine call) give the plug-in
I(F_t; Y), μ_Y(F_t; L) = I(F_t; Y) − I(F_t; Y | L) and I(L; Y | F_t), with I(L; Y) as reference.
Modules: `config` (options, tasks, networks), `run` (engine calls, measures, summary),
`claims` (the claims, declared from the options alone, judged by `lazyrich.evidence`, and the
plan's seed sizing), `_stats` (T0 by the practical margin, its permutation test, T_L, the
per-run bootstrap: reported numbers, not verdicts),
`figures`.
"""

from .claims import claims as claims
from .claims import declare as declare
from .claims import per_unit as per_unit
from .claims import sizing as sizing
from .config import DESCRIPTION as DESCRIPTION
from .config import FILE_TASKS as FILE_TASKS
from .config import NAME as NAME
from .config import NETWORKS as NETWORKS
from .config import PRESETS as PRESETS
from .config import TASKS as TASKS
from .config import TITLE as TITLE
from .config import Config as Config
from .config import cnn_applies as cnn_applies
from .config import load_task as load_task
from .config import make_network as make_network
from .config import seeds as seeds
from .config import validate as validate
from .run import MEASURES as MEASURES
from .run import analyse as analyse
from .run import information as information
from .run import record_steps as record_steps
from .run import run as run
from .run import train_and_measure as train_and_measure
