"""Training: one engine (`train`) for every study — online streams, epochs, full batch; any
optax transformation or custom `Step`; a named hyperparameter `Grid` as vmapped axes."""

from ._distributed import barrier as barrier
from ._distributed import default_devices as default_devices
from ._distributed import init_distributed as init_distributed
from ._distributed import run_sharding as run_sharding
from ._engine import train as train
from ._grid import Grid as Grid
from ._losses import accuracy as accuracy
from ._losses import cross_entropy as cross_entropy
from ._losses import get_loss as get_loss
from ._losses import half_mse as half_mse
from ._losses import mse as mse
from ._params import final_params as final_params
from ._programs import Apply as Apply
from ._programs import Factory as Factory
from ._programs import Snapshot as Snapshot
from ._programs import Stream as Stream
from ._programs import step_key as step_key
from ._schedule import log_steps as log_steps
from ._steps import OptaxStep as OptaxStep
from ._steps import Step as Step
from ._steps import as_step as as_step
