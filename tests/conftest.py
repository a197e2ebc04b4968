"""Test configuration: 4 host CPU devices (so sharding is testable on CPU), fast compiles, and
an x64 fixture.

Compilation dominates the suite's time on CPU (the tests run many small, different programs).
`--xla_backend_optimization_level=0` turns off LLVM's optimisation passes: XLA:CPU compiles
about twice as fast and the tiny test programs run about as fast. Floating-point semantics are
unchanged (no fast-math either way); bit-for-bit comparisons are between runs compiled with the
same flags (the CLI tests pass them on to their child processes).
"""

import os

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
