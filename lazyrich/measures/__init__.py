"""Measures: information measures, sharpness and the best linear classifier."""

from ._active import activity as activity
from ._active import layer_report as layer_report
from ._active import layer_scale as layer_scale
from ._active import reset as reset
from ._active import select_active as select_active
from ._active import select_least as select_least
from ._active import select_random as select_random
from ._active import unit_activity as unit_activity
from ._controls import layer_strata as layer_strata
from ._controls import magnitude_strata as magnitude_strata
from ._controls import select_matched as select_matched
from ._information import cmi as cmi
from ._information import conditional_mutual_information as conditional_mutual_information
from ._information import conditional_mutual_information_mm as conditional_mutual_information_mm
from ._information import entropy as entropy
from ._information import entropy_mm as entropy_mm
from ._information import i_ly_given_f as i_ly_given_f
from ._information import joint_counts as joint_counts
from ._information import mi as mi
from ._information import mu as mu
from ._information import mutual_information as mutual_information
from ._linear import fit_logistic as fit_logistic
from ._linear import logistic_loss as logistic_loss
from ._permutation import cmi_permutation_test as cmi_permutation_test
from ._sharpness import hvp as hvp
from ._sharpness import top_hessian_eigenvalue as top_hessian_eigenvalue
