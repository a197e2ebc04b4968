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
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cost(seconds): the test's (or its group's) rough duration on a loaded 2-core machine; "
        "costly groups are handed to the xdist workers first",
    )


def _group(item: pytest.Item) -> str:
    mark = item.get_closest_marker("xdist_group")
    assert mark is not None  # every item gets one below
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Schedule for `--dist loadgroup --no-loadscope-reorder` (pyproject's addopts).

    A test without its own `xdist_group` mark joins its file's group, so each file runs on one
    worker as under `--dist loadfile` (its module fixtures are computed once). A slow file
    whose tests share nothing gives each test its own group, so both workers share it. Groups
    are then ordered by their `cost` mark, costliest first (the default order puts files with
    few tests, often the slowest, last: the run ends with one worker idle). The sort is stable
    and moves whole groups, so a file's tests stay together and in order.
    """
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    cost: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        group = _group(item)
        mark = item.get_closest_marker("cost")
        seconds = float(mark.args[0]) if mark is not None else 0.0
        cost[group] = max(cost.get(group, 0.0), seconds)
        first.setdefault(group, i)
    items.sort(key=lambda item: (-cost[_group(item)], first[_group(item)]))
