"""One BLAS thread under JAX's CPU LAPACK kernels.

On CPU, `jnp.linalg.eigh`, `svd`, `cholesky`, … are custom calls into LAPACK routines that
jaxlib takes from SciPy (`scipy.linalg.cython_lapack`), i.e. from the OpenBLAS that SciPy
bundles. That OpenBLAS starts one thread per core by default, and the custom call already runs
on one of XLA's own intra-op threads, so every level-2 BLAS call inside the routine (the
tridiagonalisation of `syevd` makes hundreds of small ones) wakes and synchronises threads that
compete with XLA's. On a loaded 2-core machine that made one 256×256 float32 `eigh` take
30 ms to 1.7 s instead of about 6 ms single-threaded, and the exact Gauss-Newton step (four
such `eigh`s) 0.2 to 3.8 s instead of about 40 ms (benchmarks/RESULTS.md). SciPy's maintainers
give the same advice for small matrices: one OpenBLAS thread.

`single_threaded_lapack()` sets that OpenBLAS to one thread at run time (the environment
variable `OPENBLAS_NUM_THREADS` is read only when the library loads, which `import jax` has
usually done already). It changes only OpenBLAS libraries outside NumPy's own folder (NumPy
bundles a separate OpenBLAS that JAX never calls), is a no-op off Linux or when JAX's default
backend is not the CPU, and runs once per process.

**Batched calls deadlock on a small CPU.** Under `jax.vmap` these routines become one batched
custom call, which jaxlib splits over XLA's intra-op thread pool and then waits for. When two
such calls run at once (e.g. the vmapped runs of an exact Gauss-Newton sweep), each pool thread
can end up waiting for batch pieces queued behind the other's wait: on the 2-core sandbox a
vmapped exact GN step over 3 seeds (batch 1024, h = 1024) hung for good, every thread asleep
in jaxlib's `ParallelBatchMap` (seen with gdb; this is what stopped the exact-gn evidence run).
`eigh`, `qr`, `cholesky` and `cho_solve` here are the `jax.numpy` / `jax.scipy` routines,
batched on the CPU backend by a sequential loop (`jax.custom_batching.sequential_vmap`), one
matrix per call, so no call waits on the pool; other backends get the plain batched routine.
They are for the solvers' forward computations (a `sequential_vmap` function has no
reverse-mode derivative).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import jax
import jax.numpy as jnp
import jax.scipy.linalg

_SETTERS = (
    "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
)


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process, NumPy's own excluded."""
    import numpy as np

    numpy_dir = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    numpy_libs = tuple(os.path.join(numpy_dir, d) + os.sep for d in ("numpy.libs", "numpy"))
    paths: set[str] = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)  # address perms offset device inode [path]
            path = parts[5].strip() if len(parts) == 6 else ""
            if "openblas" in os.path.basename(path) and not path.startswith(numpy_libs):
                paths.add(path)
    return sorted(paths)


def set_lapack_threads(n: int) -> tuple[str, ...]:
    """Set the OpenBLAS under JAX's CPU LAPACK calls (SciPy's, not NumPy's) to `n` threads.

    **Arguments:**

    - `n`: number of threads (1 for the setting `pinv_solve` uses; `os.cpu_count()` for
      OpenBLAS's default).

    **Returns:**

    The paths of the OpenBLAS libraries whose thread count was set (empty when nothing was
    changed: not Linux, not the CPU backend, or no SciPy).
    """
    if not sys.platform.startswith("linux") or jax.default_backend() != "cpu":
        return ()
    try:
        import scipy.linalg.cython_lapack  # noqa: F401  (the LAPACK jaxlib calls; loads it)
    except ImportError:
        return ()
    done = []
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(n))
                done.append(path)
                break
    return tuple(done)


@functools.cache
def single_threaded_lapack() -> tuple[str, ...]:
    """Use one OpenBLAS thread for JAX's CPU LAPACK calls (see the module docstring); done
    once per process.

    **Returns:**

    The paths of the OpenBLAS libraries whose thread count was set to 1 (empty when nothing
    was changed).
    """
    return set_lapack_threads(1)


def _sequential_on_cpu(fn):
    seq = jax.custom_batching.sequential_vmap(fn)

    @functools.wraps(fn)
    def wrapped(*args):
        single_threaded_lapack()
        return seq(*args) if jax.default_backend() == "cpu" else fn(*args)

    return wrapped


eigh = _sequential_on_cpu(lambda a: tuple(jnp.linalg.eigh(a)))
eigh.__doc__ = "`jnp.linalg.eigh(a)` as `(eigenvalues, eigenvectors)`, vmapped as a loop on CPU."
qr = _sequential_on_cpu(lambda a: tuple(jnp.linalg.qr(a)))
qr.__doc__ = "The reduced `jnp.linalg.qr(a)` as `(q, r)`, vmapped as a loop on CPU."
cholesky = _sequential_on_cpu(jnp.linalg.cholesky)
cholesky.__doc__ = "`jnp.linalg.cholesky(a)` (lower), vmapped as a loop on CPU."
cho_solve = _sequential_on_cpu(lambda chol, b: jax.scipy.linalg.cho_solve((chol, True), b))
cho_solve.__doc__ = "`(L Lᵀ)⁻¹ b` from the lower Cholesky factor `L`, vmapped as a loop on CPU."
