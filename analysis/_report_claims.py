"""The claims of a study (`summary.json["claims"]`): schema check, number formatting, Markdown.

A claim is `{id, paper, claim, theory, measured: {value, lo, hi[, n]}, verdict, rule, figure}`
plus an optional `note` and the fields of a `lazyrich.evidence` row (`margin`, `reason`, `kind`,
`unit`, `estimator`, `resolution`, `theory_text`, `width_vs_margin`; see DESIGN.md). Rows
written before `lazyrich.evidence` (no margin) are still read, and shown as not preregistered.
`check_claims` accepts exactly that shape and raises a
one-line `ConfigError` naming the study, the claim and the field otherwise:

- `id`, `paper`, `claim`, `rule`: non-empty strings; `id` unique within the study;
- `theory`: a string or a number (the predicted value, or the prediction in words);
- `measured`: an object with `value`, `lo`, `hi`, each a number or null (NaN counts as null);
  when none is null, `lo <= value <= hi` (±∞ allowed for a one-sided interval); a missing
  number (null/NaN) is allowed only with verdict `undecided` — never a verdict without a
  measured interval;
- `verdict`: `agrees`, `disagrees`, `undecided` or `smoke` (a quick preset's row);
- `figure`: null or a path inside the study directory (`figures/NAME.png`);
- `note` (optional): a string.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

from lazyrich.errors import ConfigError

VERDICTS = ("agrees", "disagrees", "undecided", "smoke")
OPTIONAL = ("note", "margin", "reason", "kind", "unit", "estimator", "resolution", "theory_text",
            "width_vs_margin")  # fmt: skip
_TEXT_FIELDS = ("id", "paper", "claim", "rule")
REQUIRED = ("id", "paper", "claim", "theory", "measured", "verdict", "rule", "figure")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def check_claims(study: str, claims: Any) -> list[dict[str, Any]]:
    """Validate `claims` of `study` (the list from its summary.json); return it.

    **Raises:** `ConfigError` with one line `STUDY/summary.json: claims[i] (id) FIELD ...`.
    """
    where = f"{study}/summary.json"

    def fail(msg: str) -> None:
        raise ConfigError(
            f"{where}: {msg}: fix the study's summary (claims shape in DESIGN.md), then rerun it"
        )

    if not isinstance(claims, list):
        fail(f"'claims' must be a list of claim objects, got {type(claims).__name__}")
    seen: set[str] = set()
    for i, c in enumerate(claims):
        if not isinstance(c, dict):
            fail(f"claims[{i}] must be an object, got {type(c).__name__}")
        name = f"claims[{i}]" + (f" ({c['id']})" if isinstance(c.get("id"), str) else "")
        for key in REQUIRED:
            if key not in c:
                fail(f"{name} lacks the field '{key}'")
        extra = set(c) - set(REQUIRED) - set(OPTIONAL)
        if extra:
            fail(f"{name} has unknown field(s) {', '.join(sorted(extra))}")
        for key in _TEXT_FIELDS:
            if not isinstance(c[key], str) or not c[key].strip():
                fail(f"{name} field '{key}' must be a non-empty string, got {c[key]!r}")
        if c["id"] in seen:
            fail(f"{name} field 'id' repeats an earlier claim's id")
        seen.add(c["id"])
        if not (isinstance(c["theory"], str) or _is_number(c["theory"])):
            fail(f"{name} field 'theory' must be a string or a number, got {c['theory']!r}")
        if "note" in c and not isinstance(c["note"], str):
            fail(f"{name} field 'note' must be a string, got {c['note']!r}")
        if c["verdict"] not in VERDICTS:
            fail(
                f"{name} field 'verdict' must be one of {', '.join(VERDICTS)}, got {c['verdict']!r}"
            )
        _check_measured(name, c["measured"], c["verdict"], fail)
        fig = c["figure"]
        if fig is not None:
            path = PurePosixPath(fig) if isinstance(fig, str) else None
            if path is None or not fig or path.is_absolute() or ".." in path.parts:
                fail(f"{name} field 'figure' must be null or a path inside the study, got {fig!r}")
    return claims


def _check_measured(name: str, m: Any, verdict: str, fail) -> None:
    if not isinstance(m, dict) or not {"value", "lo", "hi"} <= set(m) <= {"value", "lo", "hi", "n"}:
        got = sorted(m) if isinstance(m, dict) else repr(m)
        fail(f"{name} field 'measured' must be an object with value, lo, hi (and n); got {got}")
    for key in ("value", "lo", "hi"):
        if not (_missing(m[key]) or _is_number(m[key])):
            fail(f"{name} field 'measured.{key}' must be a number or null, got {m[key]!r}")
    if any(_missing(m[k]) for k in ("value", "lo", "hi")):
        if verdict not in ("undecided", "smoke"):
            missing = next(k for k in ("value", "lo", "hi") if _missing(m[k]))
            fail(
                f"{name} field 'measured.{missing}' is null but verdict is {verdict!r}: "
                "a verdict needs a measured interval (use 'undecided')"
            )
        return
    lo, value, hi = m["lo"], m["value"], m["hi"]
    if not lo <= hi:
        fail(f"{name} field 'measured.lo' ({lo}) exceeds 'measured.hi' ({hi})")
    if not lo <= value <= hi:
        fail(f"{name} field 'measured.value' ({value}) lies outside [lo, hi] = [{lo}, {hi}]")


def fmt_number(v: Any) -> str:
    """A number for a table: 4 significant digits, ∞ for infinities, — for null/NaN."""
    if _missing(v):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_measured(m: dict[str, Any]) -> tuple[str, str]:
    """`(value, "[lo, hi]")` of a claim's measured interval, formatted (`("not measured", "")`
    when all three are null)."""
    if all(_missing(m[k]) for k in ("value", "lo", "hi")):
        return "not measured", ""
    return fmt_number(m["value"]), f"[{fmt_number(m['lo'])}, {fmt_number(m['hi'])}]"


def fmt_theory(t: str | float, claim: dict[str, Any] | None = None) -> str:
    """The theory of a claim row: its `theory_text` (or number) and, for a row with a margin,
    the region it allows (`2 ± 0.1`, `> 0 + 0.01`, `< 1 − 0.05`)."""
    c = claim or {}
    text = c.get("theory_text") or (t if isinstance(t, str) else fmt_number(t))
    margin = c.get("margin")
    if not _is_number(margin):
        return text
    sign = {"equal": " ± ", "above": " + ", "below": " − "}.get(c.get("kind", "equal"), " ± ")
    lead = {"above": "> ", "below": "< "}.get(c.get("kind", "equal"), "")
    return f"{lead}{text}{sign}{fmt_number(margin)}"


def fmt_width(c: dict[str, Any]) -> str:
    """For an undecided row with a margin: its interval width against 2 × margin and about how
    many units would decide it; else ''."""
    ratio, m = c.get("width_vs_margin"), c.get("measured") or {}
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool):
        return ""
    text = f"width {fmt_number(ratio)} × (2 × margin)"
    n = m.get("n")
    if c.get("kind", "equal") == "equal" and isinstance(n, int) and n > 0:
        text += f"; ~{math.ceil(n * ratio**2)} seeds to fit the band"
    return text


# ---- Markdown -------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A Markdown table cell: one line, pipes and HTML escaped."""
    s = " ".join(str(text).split())
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


_MD_HEAD = "| {}claim | paper | theory | measured [lo, hi] | verdict | rule | figure |"


def _md_rows(
    study: str | None, claims: list[dict[str, Any]], link: str, status: str = ""
) -> list[str]:
    rows = []
    for c in claims:
        verdict = f"**{c['verdict']}**" + (f" ({_md(status)})" if status else "")
        if fmt_width(c):
            verdict += f"; {_md(fmt_width(c))}"
        value, interval = fmt_measured(c["measured"])
        fig = f"[{_md(c['figure'])}]({link}{c['figure']})" if c["figure"] else "—"
        claim = _md(c["claim"]) + (f" *({_md(c['note'])})*" if c.get("note") else "")
        lead = f"{_md(study)} | " if study is not None else ""
        rows.append(
            f"| {lead}**{_md(c['id'])}**: {claim} | {_md(c['paper'])}"
            f" | {_md(fmt_theory(c['theory'], c))} | {f'{value} {interval}'.strip()}"
            f" | {verdict} | {_md(c['rule'])} | {fig} |"
        )
    return rows


def markdown_tables(studies: list[tuple[str, str, list[dict[str, Any]] | None, str]]) -> str:
    """The claims as Markdown: one overall table, then one table per study.

    **Arguments:** `studies`: `(name, title, claims, status)` per study, in report order;
    `claims` is `None` for a study that has not run, `[]` for one that reports no claims yet;
    `status` is `""` or a phrase shown beside each verdict (e.g. "not preregistered (...)").

    **Returns:** the Markdown text; figure links are relative to the results directory.
    """
    head = _MD_HEAD.format("study | ")
    lines = ["# Evidence: the papers' claims, measured", "", "## All claims", "", head]
    lines.append("|" + "---|" * (head.count("|") - 1))
    for name, _, claims, status in studies:
        if claims is None:
            lines.append(f"| {_md(name)} | *not run* |  |  |  |  |  |  |")
        elif not claims:
            lines.append(f"| {_md(name)} | *this study reports no claims yet* |  |  |  |  |  |  |")
        else:
            lines += _md_rows(name, claims, f"{name}/", status)
    for name, title, claims, status in studies:
        lines += ["", f"## {_md(title)} (`{name}`)", ""]
        if claims is None:
            lines.append(f"Not run: `lazyrich run {name}`.")
        elif not claims:
            lines.append("This study reports no claims yet.")
        else:
            head = _MD_HEAD.format("")
            lines += [head, "|" + "---|" * (head.count("|") - 1)]
            lines += _md_rows(None, claims, f"{name}/", status)
    return "\n".join(lines) + "\n"
