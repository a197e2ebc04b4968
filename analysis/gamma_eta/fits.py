"""Broken-power-law fits of the γ–η study: Bayesian NUTS (`lazyrich.fit.fit_broken_power_law`,
posterior means and 90% intervals) or its cheap least-squares twin
(`lazyrich.fit.least_squares_broken_power_law`, for the quick preset: each NUTS fit costs
seconds of compilation on a CPU). Either way the result is a `lazyrich.fit.FitResult`.
"""

from __future__ import annotations

from typing import Any

from lazyrich.errors import ConfigError
from lazyrich.fit import FitResult, fit_broken_power_law, least_squares_broken_power_law

METHODS = ("nuts", "least-squares")


def broken_fit(x, y, *, method: str, samples: int) -> tuple[dict[str, Any], FitResult | None]:
    """The fit as a JSON-ready dict, or `{"not_measured": reason}` when it cannot be made."""
    try:
        if method == "nuts":
            fit = fit_broken_power_law(x, y, num_samples=samples, num_warmup=samples)
        else:
            fit = least_squares_broken_power_law(x, y)
    except ConfigError as err:
        return {"not_measured": str(err)}, None
    return {**fit.to_dict(), "method": method}, fit
