"""Measures: information measures, sharpness and the best linear classifier."""

from .active import activity as activity
from .active import layer_report as layer_report
from .active import reset as reset
from .active import select_active as select_active
from .active import select_least as select_least
from .active import select_random as select_random
from .active import unit_activity as unit_activity
from .information import cmi as cmi
from .information import conditional_mutual_information as conditional_mutual_information
from .information import entropy as entropy
from .information import i_ly_given_f as i_ly_given_f
from .information import joint_counts as joint_counts
from .information import mi as mi
from .information import mu as mu
from .information import mutual_information as mutual_information
from .linear import fit_logistic as fit_logistic
from .linear import logistic_loss as logistic_loss
from .sharpness import hvp as hvp
from .sharpness import top_hessian_eigenvalue as top_hessian_eigenvalue
