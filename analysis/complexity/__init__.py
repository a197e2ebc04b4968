"""SGD learns functions of increasing complexity (PAPERS.md §5, Nakkiran et al. 2019).

Binary tasks (mnist1d, MNIST and CIFAR-10 with label = class > 4, and a 2-D "sinusoidal ball"
with label noise, `lazyrich.data.ball`), an MLP and the CNN of §5 (`lazyrich.models.PaperCNN`),
plain SGD towards zero training error. L is the best linear classifier on the same training
data (logistic regression to convergence). At log-spaced early steps and at every epoch end
the network's hard test predictions F_t (a measure of one engine call) give the plug-in
I(F_t; Y), μ_Y(F_t; L) = I(F_t; Y) − I(F_t; Y | L) and I(L; Y | F_t), with I(L; Y) as reference.
Modules: `_config` (options, tasks, networks), `_run` (engine calls, measures, summary),
`_figures`.
"""

from ._claims import claims as claims
from ._config import DESCRIPTION as DESCRIPTION
from ._config import FILE_TASKS as FILE_TASKS
from ._config import NAME as NAME
from ._config import NETWORKS as NETWORKS
from ._config import PRESETS as PRESETS
from ._config import TASKS as TASKS
from ._config import TITLE as TITLE
from ._config import Config as Config
from ._config import cnn_applies as cnn_applies
from ._config import load_task as load_task
from ._config import make_network as make_network
from ._config import seeds as seeds
from ._config import validate as validate
from ._run import MEASURES as MEASURES
from ._run import analyse as analyse
from ._run import find_t0 as find_t0
from ._run import information as information
from ._run import record_steps as record_steps
from ._run import run as run
from ._run import train_and_measure as train_and_measure
