"""Optimizers: exact and NTK-space Gauss-Newton, DLDR subspace training, layer-wise sparse SGD.

The public names are what a researcher calls: optax transformations and engine steps
(`exact_gauss_newton`, `p_sgd`, `p_bfgs`, `PLWS`, `masked`), the directions and subspaces
they are built from (`exact_gn_direction`, `ntk_gauss_newton`, `output_error`,
`dldr_subspace`, `TrajectorySampler`, `project`), the layer selection of LWS-SGD
(`layer_mask`, `layer_indices`, `LAYER_SETS`, `lws_value_and_grad`, `plws_coin`), the base
class of a custom Gram solver (`AbstractGramSolver`) and the CPU LAPACK thread setting
(`set_lapack_threads`).
"""

from ._dldr import TrajectorySampler as TrajectorySampler
from ._dldr import dldr_subspace as dldr_subspace
from ._dldr import p_sgd as p_sgd
from ._dldr import project as project
from ._gauss_newton import exact_gauss_newton as exact_gauss_newton
from ._gauss_newton import exact_gn_direction as exact_gn_direction
from ._gauss_newton import ntk_gauss_newton as ntk_gauss_newton
from ._gauss_newton import output_error as output_error
from ._lapack_threads import set_lapack_threads as set_lapack_threads
from ._lws import LAYER_SETS as LAYER_SETS
from ._lws import PLWS as PLWS
from ._lws import layer_indices as layer_indices
from ._lws import layer_mask as layer_mask
from ._lws import lws_value_and_grad as lws_value_and_grad
from ._lws import masked as masked
from ._lws import plws_coin as plws_coin
from ._pbfgs import p_bfgs as p_bfgs
from ._pinv import AbstractGramSolver as AbstractGramSolver
