"""Bayesian scaling-law fits (numpyro NUTS): single and smoothly broken power laws."""

from ._power_law import Estimate as Estimate
from ._power_law import FitResult as FitResult
from ._power_law import fit_broken_power_law as fit_broken_power_law
from ._power_law import fit_power_law as fit_power_law
