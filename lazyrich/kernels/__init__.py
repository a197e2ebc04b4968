"""Kernels: our empirical NTK, infinite-width twins (neural-tangents), kernel measures."""

from ._infinite import InfiniteKernels as InfiniteKernels
from ._infinite import infinite_kernels as infinite_kernels
from ._infinite import stax_twin as stax_twin
from ._nt_compat import nt as nt
from ._ntk import empirical_ntk as empirical_ntk
from ._ntk import ntk_vector_product as ntk_vector_product
from ._similarity import kernel_alignment as kernel_alignment
from ._similarity import kernel_distance as kernel_distance
from ._similarity import linear_cka as linear_cka
from ._similarity import linear_cka_debiased as linear_cka_debiased
from ._similarity import ntk_probe_similarity as ntk_probe_similarity
