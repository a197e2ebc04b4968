"""`lazyrich report`: every study under OUT in one self-contained-looking HTML page.

Images are linked by relative path (`STUDY/figures/NAME.png`), so the page works when opened
from OUT in a browser, or when OUT is copied elsewhere as a whole.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from lazyrich.errors import ConfigError
from lazyrich.results import atomic_write_bytes

from .studies import STUDIES, get_study

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; font-family: monospace; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 520px; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; } .desc { color: #444; }
details { margin: 0.5em 0; }
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (int, float)) for x in v):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        rows: list[tuple[str, Any]] = []
        for k, v in d.items():
            rows += _flatten(v, f"{prefix}{k}.")
        return rows
    return [(prefix.rstrip("."), d)]


def _table(d: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td class='num'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in _flatten(d)
    )
    return f"<table>{rows}</table>"


def _section(study_dir: Path) -> str:
    name = study_dir.name
    summary = json.loads((study_dir / "summary.json").read_text())
    config_path = study_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    try:
        module = get_study(name)
        title, desc = module.TITLE, module.DESCRIPTION
    except ConfigError:
        title, desc = name, ""
    figures = "".join(
        f"<figure><img src='{html.escape(f'{name}/figures/{p.name}')}' alt='{p.stem}'>"
        f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
        for p in sorted((study_dir / "figures").glob("*.png"))
    )
    return (
        f"<h2 id='{name}'>{html.escape(title)} <small>({name})</small></h2>"
        f"<p class='desc'>{html.escape(desc)}</p>"
        f"<h3>Summary</h3>{_table(summary)}"
        f"<h3>Figures</h3>{figures or '<p>(no figures)</p>'}"
        f"<details><summary>Configuration</summary>{_table(config)}</details>"
    )


def write_report(out: Path) -> Path:
    """Write `out/report.html` from every `out/STUDY/summary.json`; return its path."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"no results directory {out}: run a study first or pass --out DIR")
    found = sorted(
        (p.parent for p in out.glob("*/summary.json")),
        key=lambda p: (list(STUDIES).index(p.name) if p.name in STUDIES else 99, p.name),
    )
    if not found:
        raise ConfigError(
            f"no study results under {out}: run `lazyrich run STUDY --out {out}` first"
        )
    toc = "".join(f"<li><a href='#{p.name}'>{p.name}</a></li>" for p in found)
    body = "".join(_section(p) for p in found)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>lazyrich report</title>"
        f"<style>{STYLE}</style></head><body><h1>lazyrich report</h1><ul>{toc}</ul>{body}"
        "</body></html>"
    )
    path = out / "report.html"
    atomic_write_bytes(path, page.encode())
    return path
