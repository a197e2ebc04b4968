"""The registry of studies: command-line name → module.

Each study module defines `NAME`, `TITLE`, `DESCRIPTION` (a paragraph for the report),
`Config` (a dataclass; its fields are the study's command-line options, documented by their
docstrings), `PRESETS` (`{"quick": Config(...), "paper": Config(...)}`) and
`validate(config)` (raises ConfigError for a bad option, before anything is written) and
`run(config, store, *, progress, devices) -> summary dict` which writes `results.nc` and
figures into `store` (a `lazyrich.results.StudyDir`), shards its engine calls over the first
`devices` local devices (`--devices`; `None`: the default devices) and returns the summary,
and `declare(config)` (its claims, before any data). Optionally `sizing(config) ->
(dict claim id → "expected 90% width … against 2 × margin …", notes)`, which `lazyrich plan`
writes into the plan.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lazyrich.errors import ConfigError

STUDIES: dict[str, str] = {
    "gamma-eta": "analysis.gamma_eta",
    "complexity": "analysis.complexity",
    "dldr": "analysis.dldr",
    "exact-gn": "analysis.exact_gn",
    "lazy-limit": "analysis.lazy_limit",
    "active-params": "analysis.active_params",
    "kernel-limits": "analysis.kernel_limits",
}

# The order in which `lazyrich demo` runs the quick presets.
DEMO_ORDER: tuple[str, ...] = tuple(STUDIES)


def get_study(name: str) -> ModuleType:
    """The module of study `name`, or a one-line ConfigError listing the known studies."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}: choose one of {', '.join(STUDIES)}")
    return importlib.import_module(STUDIES[name])


def get_preset(study: ModuleType, preset: str):
    if preset not in study.PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r} for {study.NAME}: choose one of {', '.join(study.PRESETS)}"
        )
    return study.PRESETS[preset]
