"""lazyrich: lazy (kernel) versus rich (feature-learning) training in JAX.

`import lazyrich` makes every package available as an attribute: `lazyrich.models`, `.data`,
`.train`, `.kernels`, `.theory`, `.optim`, `.measures`, `.fit`, `.results`, `.evidence`,
`.errors`. They are imported on first use, so `import lazyrich` stays cheap and does not start
JAX's backend (a multi-process launch must call `jax.distributed.initialize` before that).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .models import functional as functional

if TYPE_CHECKING:
    from . import (
        data,
        errors,
        evidence,
        fit,
        kernels,
        measures,
        models,
        optim,
        results,
        theory,
        train,
    )

__version__ = "0.1.0"
__all__ = [
    "data", "errors", "evidence", "fit", "functional", "kernels", "measures", "models", "optim",
    "results", "theory", "train",
]  # fmt: skip
_PACKAGES = frozenset(__all__) - {"functional"}


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lazyrich' has no attribute {name!r}")
