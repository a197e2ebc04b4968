"""Kernels: our empirical NTK, infinite-width twins (neural-tangents), kernel measures."""

from .infinite import InfiniteKernels as InfiniteKernels
from .infinite import infinite_kernels as infinite_kernels
from .infinite import stax_twin as stax_twin
from .measures import kernel_alignment as kernel_alignment
from .measures import kernel_distance as kernel_distance
from .measures import linear_cka as linear_cka
from .measures import linear_cka_debiased as linear_cka_debiased
from .measures import ntk_probe_similarity as ntk_probe_similarity
from .ntk import empirical_ntk as empirical_ntk
from .ntk import ntk_vector_product as ntk_vector_product
