"""`lazyrich report`: every study under OUT in one self-contained HTML page, verdicts first.

The page opens with one table of every claim of every study (`summary.json["claims"]`, checked
by `analysis._report_claims.check_claims`): the paper, the claim, the theory, the measured value
with its interval, the verdict and links to the figure and the study's section. Studies that
have not run and studies that report no claims yet get a row saying so. Each study section then
shows its claims, its figures, and its configuration and raw summary (collapsed, as nested
tables).

Verdicts: a quick preset's claims are **smoke** (shown, never agree/disagree); a study whose
run no committed plan preregistered (`lazyrich.evidence.preregistered`) is marked
**not preregistered** beside each verdict; an undecided row shows its interval's width against
2 × margin. A study whose `summary.json` is unreadable or malformed gets one warning line and a
row saying so; the other studies still render. A control run kept in a subfolder
(`OUT/STUDY/CONTROL/summary.json`) is listed as the study `STUDY/CONTROL`, next to its study.

Images and figure links are relative paths (`STUDY/figures/NAME.png`): the page works when
opened from OUT in a browser, or when OUT is copied elsewhere as a whole. No external fonts or
scripts. `write_markdown` writes the same claims as Markdown tables (`OUT/EVIDENCE.md`).
"""

from __future__ import annotations

import html
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lazyrich.errors import ConfigError
from lazyrich.evidence import SMOKE_SENTENCE, preregistered
from lazyrich.results import atomic_write_bytes

from ._report_claims import check_claims, markdown_tables
from ._report_html import STYLE, anchor, claims_table, figures_grid, nested_table, verdict_badge
from .studies import STUDIES, get_study

NO_CLAIMS = "this study reports no claims yet"


@dataclass(frozen=True)
class _Study:
    name: str
    title: str
    description: str
    path: Path
    summary: dict[str, Any] | None  # None: not run
    config: dict[str, Any]
    claims: list[dict[str, Any]] | None  # None: no "claims" key
    figures: list[Path]
    status: str = ""  # "" (preregistered or smoke) or "not preregistered (why)"
    error: str | None = None  # the one line for an unreadable summary


def _status(summary: dict[str, Any], path: Path) -> str:
    if summary.get("preset") == "quick":
        return ""  # smoke: preregistration does not apply
    ok, why = preregistered(summary.get("provenance"), path / "plan.json")
    return "" if ok else f"not preregistered: {why}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{path} is not readable JSON ({e}): rerun that study or delete its directory"
        ) from None


def _load(out: Path, name: str) -> _Study:
    parts = Path(name).parts  # a control or a later plan's run: OUT/STUDY/FOLDER/STUDY
    try:
        module = get_study(parts[-1])
        title, desc = module.TITLE, module.DESCRIPTION
        if len(parts) > 1:
            title = f"{title} — {' / '.join(parts[1:-1]) or parts[0]}"
    except ConfigError:
        title, desc = name, ""
    path = out / name
    if not (path / "summary.json").is_file():
        return _Study(name, title, desc, path, None, {}, None, [])
    try:
        summary = _read_json(path / "summary.json")
        if not isinstance(summary, dict):
            raise ConfigError(f"{name}/summary.json must hold a JSON object: rerun the study")
        config = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
        claims = check_claims(name, summary["claims"]) if "claims" in summary else None
    except ConfigError as e:  # one broken study: one line, the others still render
        warnings.warn(f"report: {e}", stacklevel=2)
        return _Study(name, title, desc, path, {}, {}, None, [], error=str(e))
    figures = sorted((path / "figures").glob("*.png"))
    return _Study(name, title, desc, path, summary, config, claims, figures, _status(summary, path))


def collect(out: Path) -> list[_Study]:
    """Every registered study (run or not) and every other study directory under `out`, in
    registry order; claims checked. Raises ConfigError when nothing has run."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"no results directory {out}: run a study first or pass --out DIR")
    extra = sorted(
        p.parent.name for p in out.glob("*/summary.json") if p.parent.name not in STUDIES
    )
    names = []
    for name in [*STUDIES, *extra]:  # each study, then its controls (OUT/STUDY/CONTROL/)
        names.append(name)
        names += sorted(
            p.parent.relative_to(out).as_posix()
            for p in (out / name).rglob("summary.json")
            if p.parent != out / name
        )
    studies = [_load(out, name) for name in names]
    if all(s.summary is None for s in studies):
        raise ConfigError(
            f"no study results under {out}: run `lazyrich run STUDY --out {out}` first"
        )
    return studies


def _preset(s: _Study) -> str:
    preset = (s.summary or {}).get("preset")
    return f" <span class='muted'>({html.escape(str(preset))})</span>" if preset else ""


def _rows(s: _Study, *, overall: bool) -> list[dict[str, Any]]:
    if s.error is not None:
        return [{"study": s.name, "verdict": "broken", "placeholder": html.escape(s.error)}]
    if s.summary is None:
        cmd = f"lazyrich run {s.name}"
        return [
            {
                "study": s.name,
                "verdict": "notrun",
                "placeholder": f"<code>{html.escape(cmd)}</code>",
            }
        ]
    if not s.claims:
        text = NO_CLAIMS + ("" if overall else "; see its figures and raw summary below")
        return [{"study": s.name, "preset": _preset(s), "verdict": None, "placeholder": text}]
    shown = {p.relative_to(s.path).as_posix() for p in s.figures}
    return [
        {
            **c, "study": s.name, "preset": _preset(s), "study_dir": s.path, "shown": shown,
            "status": s.status,
        }
        for c in s.claims
    ]  # fmt: skip


def _counts(studies: list[_Study]) -> str:
    claims = [c for s in studies for c in s.claims or []]
    parts = [
        f"{verdict_badge(v)} {sum(c['verdict'] == v for c in claims)}"
        for v in ("agrees", "disagrees", "undecided", "smoke")
        if v != "smoke" or any(c["verdict"] == "smoke" for c in claims)
    ]
    late = sum(len(s.claims or []) for s in studies if s.status)
    if late:
        parts.append(f"{late} not preregistered")
    silent = sum(s.summary is not None and not s.claims for s in studies)
    notrun = sum(s.summary is None for s in studies)
    parts.append(f"{silent} {'study' if silent == 1 else 'studies'} without claims")
    parts.append(f"{notrun} not run")
    return "<p class='counts'>" + "".join(f"<span>{p}</span>" for p in parts) + "</p>"


def _section(s: _Study) -> str:
    head = (
        f"<h2 id='{anchor(s.name)}'>{html.escape(s.title)} <small>({html.escape(s.name)})</small>"
        "</h2>"
        + (
            "<details class='about'><summary>About this study</summary>"
            f"<p class='desc'>{html.escape(s.description)}</p></details>"
            if s.description
            else ""
        )
    )
    if s.error is not None:
        return head + f"<p class='muted'>Unreadable: {html.escape(s.error)}</p>"
    if s.summary is None:
        cmd = f"lazyrich run {s.name} --out {s.path.parent}"
        return head + f"<p class='muted'>Not run: <code>{html.escape(cmd)}</code></p>"
    raw = {k: v for k, v in s.summary.items() if k != "claims"}
    return (
        head
        + "<h3>Claims</h3>"
        + claims_table(_rows(s, overall=False), with_study=False)
        + "<h3>Figures</h3>"
        + figures_grid(s.name, s.path, s.figures)
        + "<details><summary>Configuration and raw summary</summary>"
        + "<h4>config.json</h4><div class='scroll'>"
        + nested_table(s.config)
        + "</div><h4>summary.json"
        + (" (claims above)" if s.claims is not None else "")
        + "</h4><div class='scroll'>"
        + nested_table(raw)
        + "</div></details>"
    )


def render_html(studies: list[_Study]) -> str:
    """The report page of `studies` (from `collect`)."""
    toc = "".join(
        f"<li><a href='#{anchor(s.name)}'>{html.escape(s.name)}</a>"
        + (" <span class='muted'>(not run)</span>" if s.summary is None else "")
        + "</li>"
        for s in studies
    )
    # verdicts first: the studies that have not run go last
    ordered = [s for s in studies if s.summary is not None] + [
        s for s in studies if s.summary is None
    ]
    rows = [r for s in ordered for r in _rows(s, overall=True)]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>lazyrich report</title><style>{STYLE}</style></head><body>"
        "<h1>lazyrich report</h1><nav><ul>"
        + toc
        + "</ul></nav><h2 id='claims'>Claims and verdicts</h2>"
        + _counts(studies)
        + "<p class='muted'>Each measured value comes with its 90% interval [lo, hi] over seeds; "
        "the theory column shows the band of practical equivalence (theory ± margin); the rule "
        "under each verdict says how it was decided.</p>"
        + (
            f"<p class='smoke-note'>{html.escape(SMOKE_SENTENCE[0].upper() + SMOKE_SENTENCE[1:])}"
            ".</p>"
            if any(c["verdict"] == "smoke" for s in studies for c in s.claims or [])
            else ""
        )
        + claims_table(rows, with_study=True)
        + "".join(_section(s) for s in studies)
        + "</body></html>"
    )


def write_report(out: Path) -> Path:
    """Write `out/report.html` from every `out/STUDY/summary.json`; return its path.

    **Raises:** `ConfigError` when `out` holds no results, or a summary is unreadable or has
    malformed claims (the message names the study and the field).
    """
    out = Path(out)
    page = render_html(collect(out))
    path = out / "report.html"
    atomic_write_bytes(path, page.encode())
    return path


def write_markdown(out: Path, path: Path | None = None) -> Path:
    """Write the claims of every study under `out` as Markdown tables (default
    `out/EVIDENCE.md`: one overall table, one per study); return its path."""
    out = Path(out)
    studies = collect(out)

    def kept(s: _Study) -> list[dict[str, Any]]:  # a figure the run did not keep: no link
        have = {p.relative_to(s.path).as_posix() for p in s.figures}
        return [
            {**c, "figure": c["figure"] if c["figure"] in have else None} for c in s.claims or []
        ]

    text = markdown_tables(
        [
            (s.name, s.title, None if s.summary is None else kept(s), s.error or s.status)
            for s in studies
        ]
    )
    path = out / "EVIDENCE.md" if path is None else Path(path)
    atomic_write_bytes(path, text.encode())
    return path
