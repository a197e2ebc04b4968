"""Measures: information measures, sharpness and the best linear classifier."""

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
