"""Theory: closed-form lazy (kernel) dynamics and predicted scalings."""

from .lazy import LazyPrediction as LazyPrediction
from .lazy import effective_rate as effective_rate
from .lazy import kernel_gd_predictions as kernel_gd_predictions
