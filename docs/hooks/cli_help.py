"""MkDocs hook: write `lazyrich --help` and every study's `lazyrich run STUDY --help` into
docs/cli.md at build time, where the page has the marker `<!-- lazyrich-cli-help -->`.

The text comes from the same code the command runs (`analysis.cli.USAGE` and `run_study`
with `--help`, which tyro answers before anything is written), so the page cannot drift from
the command.
"""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
from pathlib import Path

MARKER = "<!-- lazyrich-cli-help -->"
WIDTH = 76  # Material's code blocks show about this many characters at 1280 px


def _help(name: str) -> str:
    from analysis.cli import run_study

    buffer = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # tyro wraps its option table to the terminal width
    try:
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            run_study(name, "quick", Path("unused"), resume=False, options=["--help"])
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    # tyro leaves the description's paragraphs unwrapped: wrap them like the option table
    text = "\n".join(
        textwrap.fill(line, WIDTH) if len(line) > WIDTH and not line[:1].isspace() else line
        for line in buffer.getvalue().strip().splitlines()
    )
    if not text.startswith("usage:"):
        raise RuntimeError(f"`lazyrich run {name} --help` printed no usage: {text[:200]!r}")
    return text


def _fence(text: str) -> str:
    return "```text\n" + text.replace("```", "'''") + "\n```"


def cli_help_markdown() -> str:
    """The generated part of the CLI page: the top-level usage, then one section per study."""
    from analysis.cli import USAGE
    from analysis.studies import STUDIES, get_study

    parts = ["## `lazyrich --help`", "", _fence(USAGE.strip()), ""]
    for name in STUDIES:
        study = get_study(name)
        parts += [f"## `lazyrich run {name}`", "", f"*{study.TITLE}*", "", _fence(_help(name)), ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_help_markdown())
