"""Bayesian scaling-law fits (numpyro NUTS): single and smoothly broken power laws."""

from .broken_power_law import Estimate as Estimate
from .broken_power_law import FitResult as FitResult
from .broken_power_law import fit_broken_power_law as fit_broken_power_law
from .broken_power_law import fit_power_law as fit_power_law
