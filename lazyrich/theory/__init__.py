"""Theory: closed-form lazy (kernel) dynamics, a network beside them in one call
(`lazy_vs_network`); the infinite-width feature-learning limit at any γ (`dmft`); the
deep-linear γ toy model (`deep_linear`)."""

from . import deep_linear as deep_linear
from ._dmft import dmft as dmft
from ._dmft import infinite_ntk as infinite_ntk
from ._lazy import LazyPrediction as LazyPrediction
from ._lazy import effective_rate as effective_rate
from ._lazy import kernel_gd_predictions as kernel_gd_predictions
from ._network import lazy_vs_network as lazy_vs_network
from ._network import network_kernels as network_kernels
from ._rich import rich_vs_network as rich_vs_network
