"""Scaling-law fits: single and smoothly broken power laws by numpyro NUTS, and a cheap
least-squares twin of the broken law (`least_squares_broken_power_law`)."""

from ._least_squares import least_squares_broken_power_law as least_squares_broken_power_law
from ._power_law import Estimate as Estimate
from ._power_law import FitResult as FitResult
from ._power_law import fit_broken_power_law as fit_broken_power_law
from ._power_law import fit_power_law as fit_power_law
