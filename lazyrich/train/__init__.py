"""Training: losses, recording schedules, vmapped online sweeps."""

from .loop import evaluate as evaluate
from .loop import fit as fit
from .loop import sgd_step as sgd_step
from .losses import accuracy as accuracy
from .losses import cross_entropy as cross_entropy
from .losses import get_loss as get_loss
from .losses import mse as mse
from .schedule import log_steps as log_steps
from .sweep import Grid as Grid
from .sweep import OnlineSetup as OnlineSetup
from .sweep import run_sweep as run_sweep
