"""Optimizers: exact and NTK-space Gauss-Newton, DLDR subspace training, layer-wise sparse SGD."""

from .dldr import PBFGSState as PBFGSState
from .dldr import TrajectorySampler as TrajectorySampler
from .dldr import dldr_subspace as dldr_subspace
from .dldr import init_p_bfgs as init_p_bfgs
from .dldr import p_bfgs as p_bfgs
from .dldr import p_bfgs_step as p_bfgs_step
from .dldr import p_sgd as p_sgd
from .gauss_newton import exact_gauss_newton as exact_gauss_newton
from .gauss_newton import exact_gn_direction as exact_gn_direction
from .gauss_newton import ntk_gauss_newton as ntk_gauss_newton
from .gauss_newton import output_error as output_error
from .gauss_newton import pinv_solve as pinv_solve
