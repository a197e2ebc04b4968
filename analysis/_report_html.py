"""HTML pieces of `lazyrich report`: the style, claims tables, figures, nested key/value tables.

Every piece of text from a results directory goes through `html.escape`; links and image
sources are relative to the results directory, so the page needs nothing but its folder.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from ._report_claims import fmt_measured, fmt_number, fmt_theory, fmt_width

STYLE = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  max-width: 1240px; margin: 0 auto; padding: 1rem 1.25rem 4rem; }
h1 { font-size: 1.7rem; margin: 0.5rem 0; border-bottom: 2px solid var(--fg); }
h2 { font-size: 1.35rem; margin-top: 2.5rem; padding-top: 0.5rem;
  border-top: 1px solid var(--line); }
h2 small { color: var(--muted); font-weight: normal; font-size: 0.8em; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
a { color: #0969da; } .muted, .desc { color: var(--muted); }
nav ul { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; padding: 0; list-style: none; }
.counts { display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; }
.counts span { white-space: nowrap; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
table.claims { width: 100%; font-size: 0.92rem; }
table.claims td.num { font-family: ui-monospace, Menlo, Consolas, monospace; }
table.claims td:last-child { overflow-wrap: anywhere; min-width: 7ch; }  /* long figure names
   wrap, so the table fits 1240 px */
table.claims .id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em;
  color: var(--muted); display: block; }
table.claims tr.none td { color: var(--muted); font-style: italic; }
.rule, .note { display: block; color: var(--muted); font-size: 0.85em; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 1em; font-weight: 600;
  font-size: 0.85em; white-space: nowrap; }
.agrees { background: #dafbe1; color: #116329; }
.disagrees { background: #ffebe9; color: #a40e26; }
.undecided { background: #fff1c2; color: #7a4b00; }
.notrun { background: #eaeef2; color: #424a53; }
.smoke { background: #d8dee4; color: #424a53; }
.broken { background: #ffebe9; color: #82071e; }
.prereg { display: inline-block; margin-left: 4px; padding: 0 6px; border-radius: 1em;
  border: 1px dashed #9a6700; color: #9a6700; font-size: 0.8em; }
.smoke-note { background: #f6f8fa; border-left: 4px solid #d8dee4; padding: 0.4rem 0.8rem; }
.figures { display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 480px), 1fr)); }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { font-size: 0.85rem; color: var(--muted); }
details { margin: 1rem 0; } details > summary { cursor: pointer; font-weight: 600; }
details.about { margin: 0.25rem 0 0.5rem; } details.about > summary { font-weight: normal;
  color: var(--muted); }
.scroll { overflow-x: auto; max-width: 100%; }
table.kv { font-size: 0.85rem; } table.kv th { white-space: nowrap; }
table.kv td { overflow-wrap: anywhere; font-family: ui-monospace, Menlo, Consolas, monospace; }
table.kv table { margin: 0; } table.kv .long { max-width: 45ch; }
@media (max-width: 760px) {
  body { padding: 0.5rem 0.75rem 3rem; font-size: 15px; }
  table.claims, table.claims tbody, table.claims tr, table.claims td {
    display: block; width: 100%; }
  table.claims thead { display: none; }
  table.claims tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 0.75rem;
    padding: 0.25rem 0.5rem; }
  table.claims td { border: none; padding: 2px 0; }
  table.claims td[data-label]::before { content: attr(data-label) ": "; color: var(--muted);
    font-size: 0.85em; font-weight: 600; }
  table.claims td.num { white-space: normal; }
  table.dict, table.dict > tbody, table.dict > tbody > tr, table.dict > tbody > tr > th,
  table.dict > tbody > tr > td { display: block; border: none; }
  table.dict > tbody > tr { border-top: 1px solid var(--line); }
  table.dict > tbody > tr > th { background: none; padding: 2px 0 0; }
  table.dict > tbody > tr > td { padding: 0 0 2px 0.75rem; }
}
"""

_e = html.escape


def anchor(*parts: str) -> str:
    """An HTML id made of `parts` (letters, digits, `-`, `_` only)."""
    return "--".join(re.sub(r"[^A-Za-z0-9_-]+", "-", p) for p in parts)


def verdict_badge(verdict: str) -> str:
    label = {"notrun": "not run", "broken": "unreadable"}.get(verdict, verdict)
    return f"<span class='verdict {verdict}'>{_e(label)}</span>"


def figure_link(study: str, study_dir: Path, fig: str | None, shown: set[str]) -> str:
    """A link to claim figure `fig`: its place in the page if shown there, else the file."""
    if not fig:
        return "<span class='muted'>—</span>"
    name = Path(fig).name
    if fig in shown:
        return f"<a href='#{anchor(study, 'fig', Path(fig).stem)}'>{_e(name)}</a>"
    if (study_dir / fig).is_file():
        return f"<a href='{_e(f'{study}/{fig}')}'>{_e(name)}</a>"
    return f"<span class='muted'>{_e(name)} (missing)</span>"


def _cell(label: str, content: str, cls: str = "") -> str:
    c = f" class='{cls}'" if cls else ""
    return f"<td{c} data-label='{_e(label)}'>{content}</td>"


def claims_table(rows: list[dict[str, Any]], *, with_study: bool) -> str:
    """The claims table. Each row is a claim plus `study`, `study_dir`, `shown` (figures in the
    page), or a placeholder `{study, placeholder: text, verdict: "notrun" | None}`."""
    head = (["study"] if with_study else []) + [
        "claim",
        "paper",
        "theory",
        "measured [lo, hi]",
        "verdict",
        "figure",
    ]
    out = ["<table class='claims'><thead><tr>"]
    out += [f"<th>{h}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        study = r["study"]
        lead = (
            _cell("study", f"<a href='#{anchor(study)}'>{_e(study)}</a>{r.get('preset', '')}")
            if with_study
            else ""
        )
        if "placeholder" in r:
            badge = verdict_badge(r["verdict"]) + " " if r.get("verdict") else ""
            out.append(
                f"<tr class='none'>{lead}<td colspan='{len(head) - int(with_study)}'>"
                f"{badge}{r['placeholder']}</td></tr>"
            )
            continue
        value, interval = fmt_measured(r["measured"])
        target = anchor(study, "claim", r["id"])
        claim = (
            f"<a class='id' href='#{target}' title='this claim in its study section'>"
            f"{_e(r['id'])}</a>"
            if with_study
            else f"<span class='id'>{_e(r['id'])}</span>"
        ) + _e(r["claim"])
        if r.get("note"):
            claim += f"<span class='note'>note: {_e(r['note'])}</span>"
        out.append(
            ("<tr>" if with_study else f"<tr id='{target}'>")
            + lead
            + _cell("claim", claim)
            + _cell("paper", _e(r["paper"]))
            + _cell("theory", _e(fmt_theory(r["theory"], r)))
            + _cell("measured", f"{_e(value)} <span class='muted'>{_e(interval)}</span>", "num")
            + _cell(
                "verdict",
                verdict_badge(r["verdict"])
                + (f"<span class='prereg'>{_e(r['status'])}</span>" if r.get("status") else "")
                + (f"<span class='rule'>{_e(fmt_width(r))}</span>" if fmt_width(r) else "")
                + f"<span class='rule'>{_e(r['rule'])}</span>",
            )
            + _cell("figure", figure_link(study, r["study_dir"], r["figure"], r["shown"]))
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def figures_grid(study: str, study_dir: Path, figures: list[Path]) -> str:
    if not figures:
        return "<p class='muted'>(no figures)</p>"
    items = []
    for p in figures:
        rel = p.relative_to(study_dir).as_posix()
        src = _e(f"{study}/{rel}")
        items.append(
            f"<figure id='{anchor(study, 'fig', p.stem)}'><a href='{src}'>"
            f"<img src='{src}' alt='{_e(p.stem.replace('_', ' '))}' loading='lazy'></a>"
            f"<figcaption>{_e(p.stem.replace('_', ' '))}</figcaption></figure>"
        )
    return "<div class='figures'>" + "".join(items) + "</div>"


def _scalar(v: Any) -> str:
    if v is None:
        return "<span class='muted'>null</span>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _e(fmt_number(v))
    text = str(v)
    return f"<div class='long'>{_e(text)}</div>" if len(text) > 60 else _e(text)


def nested_table(d: Any) -> str:
    """`d` (JSON data) as nested HTML: objects as key/value tables, lists of objects as tables
    with one column per key, lists of scalars inline."""
    if isinstance(d, dict):
        if not d:
            return "<span class='muted'>{}</span>"
        rows = "".join(
            f"<tr><th>{_e(str(k))}</th><td>{nested_table(v)}</td></tr>" for k, v in d.items()
        )
        return f"<table class='kv dict'>{rows}</table>"
    if isinstance(d, list):
        if not d:
            return "<span class='muted'>[]</span>"
        if all(isinstance(x, dict) for x in d):
            keys = list(dict.fromkeys(k for x in d for k in x))
            head = "".join(f"<th>{_e(str(k))}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{nested_table(x.get(k))}</td>" for k in keys) + "</tr>"
                for x in d
            )
            return f"<table class='kv'><tr>{head}</tr>{body}</table>"
        if all(not isinstance(x, (dict, list)) for x in d):
            count = f"<span class='muted'>({len(d)})</span> " if len(d) > 8 else ""
            return count + "[" + ", ".join(_scalar(x) for x in d) + "]"
        return "<ol>" + "".join(f"<li>{nested_table(x)}</li>" for x in d) + "</ol>"
    return _scalar(d)
