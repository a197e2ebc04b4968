"""Training: losses, recording schedules, vmapped online sweeps."""

from ._distributed import barrier as barrier
from ._distributed import default_devices as default_devices
from ._distributed import init_distributed as init_distributed
from ._distributed import run_sharding as run_sharding
from ._loop import evaluate as evaluate
from ._loop import fit as fit
from ._loop import sgd_step as sgd_step
from ._losses import accuracy as accuracy
from ._losses import cross_entropy as cross_entropy
from ._losses import get_loss as get_loss
from ._losses import mse as mse
from ._schedule import log_steps as log_steps
from ._sweep import Grid as Grid
from ._sweep import OnlineSetup as OnlineSetup
from ._sweep import run_sweep as run_sweep
