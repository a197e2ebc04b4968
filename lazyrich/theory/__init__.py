"""Theory: closed-form lazy (kernel) dynamics and predicted scalings."""

from .deep_linear import ToyRun as ToyRun
from .deep_linear import balanced_hessian_eigenvalues as balanced_hessian_eigenvalues
from .deep_linear import eta_star_prediction as eta_star_prediction
from .deep_linear import gradient_flow as gradient_flow
from .deep_linear import plateau_length as plateau_length
from .deep_linear import rescaled_time as rescaled_time
from .deep_linear import sharpness_at_init as sharpness_at_init
from .deep_linear import sharpness_at_solution as sharpness_at_solution
from .deep_linear import simulate as simulate
from .deep_linear import staircase as staircase
from .deep_linear import theory_slopes as theory_slopes
from .lazy import LazyPrediction as LazyPrediction
from .lazy import effective_rate as effective_rate
from .lazy import kernel_gd_predictions as kernel_gd_predictions
