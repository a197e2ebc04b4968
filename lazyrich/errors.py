"""Errors that carry a one-line message for the user: what is wrong and how to fix it.

The command line turns every `ConfigError` into that line on stderr and exit code 2.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad argument or an impossible configuration. The message names the fix."""


class DataError(ConfigError):
    """A data file or directory that is missing, unreadable or corrupt."""


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(message)
