"""Test configuration: 4 host CPU devices (so sharding is testable on CPU), fast compiles, and
an x64 fixture.

Compilation dominates the suite's time on CPU (the tests run many small, different programs).
`--xla_backend_optimization_level=0` turns off LLVM's optimisation passes: XLA:CPU compiles
about twice as fast and the tiny test programs run about as fast. Floating-point semantics are
unchanged (no fast-math either way); bit-for-bit comparisons are between runs compiled with the
same flags (the CLI tests pass them on to their child processes).

One persistent compilation cache per test session (a fresh temporary folder, shared by the
xdist workers and the child processes they start, removed at the end): the same study program
compiled by several tests, workers or processes compiles once. A cache hit returns the
executable the compile would have produced; JAX still reports each `backend_compile` event, so
the tests that count compilations see the same counts.
"""

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault(
    "XLA_FLAGS", "--xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0"
)
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # the controller; workers inherit it
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="lazyrich-tests-jax-")
    os.environ["LAZYRICH_TESTS_OWN_CACHE"] = os.environ["JAX_COMPILATION_CACHE_DIR"]
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cost(seconds): the file's rough duration on a loaded 2-core machine; costly files are "
        "handed to the xdist workers first",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Hand files to the xdist workers costliest first (pyproject: `--dist loadfile
    --no-loadscope-reorder`), by their `cost` mark.

    xdist's default order sorts files by their number of tests, which put the slow files with
    few tests last and ended the run on one worker. The sort is stable and moves whole files,
    so a file's tests stay together and in order (its module fixtures are computed once).
    (`--dist loadgroup` would spread single tests, but xdist 3.8 cannot tag pytest 9.2's node
    ids with their group, so it schedules every test alone.)
    """
    cost: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        path = item.nodeid.split("::", 1)[0]
        mark = item.get_closest_marker("cost")
        cost[path] = max(cost.get(path, 0.0), float(mark.args[0]) if mark is not None else 0.0)
        first.setdefault(path, i)
    items.sort(key=lambda item: (-cost[p := item.nodeid.split("::", 1)[0]], first[p]))


def pytest_sessionfinish(session):
    """The session's own compilation cache goes with it (only the process that made it)."""
    own = os.environ.get("LAZYRICH_TESTS_OWN_CACHE")
    if own and not hasattr(session.config, "workerinput") and Path(own).is_dir():
        shutil.rmtree(own, ignore_errors=True)
