"""lazyrich: lazy (kernel) versus rich (feature-learning) training in JAX."""

from .models import functional as functional

__version__ = "0.1.0"
