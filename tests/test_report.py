"""`lazyrich report`: the claims table first, the placeholder rows, figures that exist, schema
errors as one line with exit code 2, and the Markdown tables. Tiny fake study outputs only."""

import json
import math
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis._report_claims import check_claims
from analysis.cli import main
from analysis.report import NO_CLAIMS, write_markdown, write_report
from lazyrich.errors import ConfigError


def _png(path: Path) -> None:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw + chunk(b"IEND", b""))


def _claim(i: int, verdict: str = "agrees", **kw) -> dict:
    c = {
        "id": f"c{i}",
        "paper": "§1",
        "claim": f"claim number {i} <b>holds</b>",
        "theory": "η* ∝ γ^(2/L)" if i % 2 else 0.5,
        "measured": {"value": 0.1 * i, "lo": 0.1 * i - 0.05, "hi": 0.1 * i + 0.05},
        "verdict": verdict,
        "rule": "theory inside the 90% interval",
        "figure": "figures/eta_star.png",
    }
    return {**c, **kw}


def _study(out: Path, name: str, claims: list | None, figures=("eta_star", "loss_curves")):
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    for f in figures:
        _png(d / "figures" / f"{f}.png")
    summary = {"study": name, "preset": "quick", "fit": {"slope": 1.98, "ci": [1.9, 2.1]}}
    summary["cases"] = [{"depth": 2, "slope": 1.0}, {"depth": 3, "slope": 0.67}]
    if claims is not None:
        summary["claims"] = claims
    (d / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (d / "config.json").write_text(json.dumps({"study": name, "width": 8, "gammas": [0.1, 1]}))


class _Page(HTMLParser):
    """Collects the img sources, the ids, the hrefs and the rows of every table."""

    def __init__(self):
        super().__init__()
        self.imgs, self.ids, self.hrefs, self.tables = [], set(), [], []
        self._stack: list[list] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a["src"])
        if tag == "a":
            self.hrefs.append(a["href"])
        if tag == "table":
            self._stack.append([a.get("class", "")])
        if tag == "tr" and self._stack:
            self._stack[-1].append([])
        if tag in ("td", "th") and self._stack:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._stack:
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "table":
            self.tables.append(self._stack.pop())


def _parse(out: Path) -> _Page:
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture
def out(tmp_path):
    _study(tmp_path, "gamma-eta", [_claim(1), _claim(2, "disagrees"), _claim(3, "undecided")])
    _study(tmp_path, "dldr", None, figures=("subspace",))  # a study without claims
    _study(tmp_path, "my-extra", [_claim(4, figure=None)], figures=())  # not in the registry
    return tmp_path


def test_claims_table_first_one_row_per_claim(out):
    write_report(out)
    page = _parse(out)
    overall = page.tables[0]  # tables close in document order: the first is the overall one
    assert overall[0] == "claims"
    head, rows = overall[1], overall[2:]
    assert head == ["study", "claim", "paper", "theory", "measured [lo, hi]", "verdict", "figure"]
    by_study = {}
    for r in rows:
        by_study.setdefault(r[0].split(" ")[0], []).append(r)
    claim_rows = by_study["gamma-eta"] + by_study["my-extra"]
    assert len(claim_rows) == 4
    for r, (i, verdict) in zip(
        claim_rows, [(1, "agrees"), (2, "disagrees"), (3, "undecided"), (4, "agrees")], strict=True
    ):
        assert f"claim number {i} <b>holds</b>" in r[1]  # escaped, shown as text
        lo, hi = 0.1 * i - 0.05, 0.1 * i + 0.05
        assert r[4] == f"{0.1 * i:.4g} [{lo:.4g}, {hi:.4g}]"
        assert r[5].startswith(verdict) and "90% interval" in r[5]
    assert claim_rows[0][6] == "eta_star.png" and claim_rows[3][6] == "—"
    # a study without claims: one placeholder row; a registered study not run: "not run"
    assert by_study["dldr"] == [["dldr (quick)", NO_CLAIMS]]
    assert ["exact-gn", "not run lazyrich run exact-gn"] in rows
    # every study section is linked, and every in-page link has a target
    for name in ("gamma-eta", "dldr", "my-extra", "exact-gn"):
        assert name in page.ids
    for h in page.hrefs:
        if h.startswith("#"):
            assert h[1:] in page.ids, h
    # no raw <b> tag made it into the page
    assert "<b>" not in (out / "report.html").read_text(encoding="utf-8")


def test_images_exist_and_raw_summary_is_nested(out):
    write_report(out)
    page = _parse(out)
    assert sorted(page.imgs) == [
        "dldr/figures/subspace.png",
        "gamma-eta/figures/eta_star.png",
        "gamma-eta/figures/loss_curves.png",
    ]
    for src in page.imgs + [h for h in page.hrefs if not h.startswith("#")]:
        assert (out / src).is_file(), src
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in text and "http" not in text  # self-contained
    assert "fit.slope" not in text  # nested tables, not dotted keys
    kv = [t for t in page.tables if "kv" in t[0]]
    assert ["slope", "1.98"] in [row for t in kv for row in t[1:]]
    assert ["depth", "slope"] in [row for t in kv for row in t[1:]]  # list of objects: a table


def test_markdown_has_the_rows(out, capsys):
    assert main(["report", "--out", str(out), "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert f"markdown: {(out / 'EVIDENCE.md').resolve()}" in printed
    md = (out / "EVIDENCE.md").read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert sum("**c" in r for r in rows) == 8  # 4 claims, overall and per study
    assert any(r.startswith("| gamma-eta | **c2**") and "**disagrees**" in r for r in rows)
    assert any(r.startswith("| dldr | *this study reports no claims yet*") for r in rows)
    assert any(r.startswith("| exact-gn | *not run*") for r in rows)
    assert "&lt;b&gt;holds&lt;/b&gt;" in md
    assert "[figures/eta_star.png](gamma-eta/figures/eta_star.png)" in md
    for r in rows:  # every row has the header's number of cells
        assert r.replace("\\|", "").count("|") in (8, 9)
    assert write_markdown(out, out / "other.md").read_text(encoding="utf-8") == md


@pytest.mark.parametrize(
    "change, field",
    [
        ({"verdict": "maybe"}, "field 'verdict'"),
        ({"rule": ""}, "field 'rule'"),
        ({"theory": None}, "field 'theory'"),
        ({"measured": {"value": 1.0, "lo": 0.0}}, "field 'measured'"),
        ({"measured": {"value": "1", "lo": 0.0, "hi": 2.0}}, "field 'measured.value'"),
        ({"measured": {"value": 3.0, "lo": 0.0, "hi": 2.0}}, "field 'measured.value' (3.0)"),
        ({"measured": {"value": 1.0, "lo": 2.0, "hi": 0.0}}, "field 'measured.lo' (2.0) exceeds"),
        ({"measured": {"value": None, "lo": 0.0, "hi": 2.0}}, "field 'measured.value' is null"),
        ({"figure": "/etc/passwd"}, "field 'figure'"),
        ({"figure": "../other/figures/x.png"}, "field 'figure'"),
        ({"note": 3}, "field 'note'"),
        ({"extra": 1}, "unknown field(s) extra"),
    ],
)
def test_malformed_claim_is_one_line_and_the_others_render(tmp_path, capsys, change, field):
    _study(tmp_path, "lazy-limit", [_claim(1), _claim(2, **change)])
    _study(tmp_path, "dldr", [_claim(7)])
    code = main(["report", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 0 and err.count("\n") == 0
    assert err.startswith("lazyrich: warning: report: lazy-limit/summary.json: claims[1] (c2)")
    assert field in err
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "unreadable" in page and "c7" in page  # the broken study says so; dldr renders


def test_schema_edges():
    for missing in ("id", "measured", "figure"):
        c = _claim(1)
        del c[missing]
        with pytest.raises(ConfigError, match=f"dldr/summary.json: claims\\[0\\].*'{missing}'"):
            check_claims("dldr", [c])
    with pytest.raises(ConfigError, match="repeats"):
        check_claims("dldr", [_claim(1), _claim(1)])
    with pytest.raises(ConfigError, match="must be a list"):
        check_claims("dldr", {"c1": _claim(1)})
    with pytest.raises(ConfigError, match="verdict is 'agrees'"):
        check_claims("dldr", [_claim(1, measured={"value": 1.0, "lo": math.nan, "hi": 2.0})])
    ok = [
        _claim(1, verdict="undecided", measured={"value": None, "lo": None, "hi": None}),
        _claim(2, measured={"value": 1.0, "lo": 0.5, "hi": math.inf}, note="one-sided"),
        _claim(3, theory=2, figure=None),
    ]
    assert check_claims("dldr", ok) == ok


def test_unreadable_summary_is_one_line(tmp_path, capsys):
    _study(tmp_path, "dldr", [])
    _study(tmp_path, "gamma-eta", [_claim(3)])
    (tmp_path / "dldr" / "summary.json").write_text("{not json")
    assert main(["report", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "summary.json is not readable JSON" in err
    assert "c3" in (tmp_path / "report.html").read_text(encoding="utf-8")


def _evidence_row(i: int, samples, **kw) -> dict:
    from lazyrich import evidence

    c = evidence.Claim(id=f"e{i}", paper="§1", claim="slope is 2/3", theory=2 / 3, margin=0.08,
                       reason="half the gap to L = 4", **kw)  # fmt: skip
    row = evidence.judge(c, samples)
    row.pop("samples")
    return row


def test_smoke_rows_are_grey_and_never_decide(tmp_path):
    row = {**_evidence_row(1, [0.66, 0.67, 0.65]), "verdict": "smoke"}
    _study(tmp_path, "gamma-eta", [row])
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "class='verdict smoke'" in page and "Smoke: a quick preset" in page
    assert "0.6667 ± 0.08" in page
    assert "not preregistered" not in page  # preregistration does not apply to smoke


def test_evidence_without_a_plan_is_marked_not_preregistered(tmp_path):
    _study(tmp_path, "gamma-eta", [_evidence_row(1, [0.2, 0.9, 0.6])])
    s = json.loads((tmp_path / "gamma-eta" / "summary.json").read_text())
    s["preset"] = "evidence"
    (tmp_path / "gamma-eta" / "summary.json").write_text(json.dumps(s))
    _study(tmp_path / "gamma-eta", "budget-control", [_claim(5)])  # a control, in a subfolder
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "not preregistered: no plan.json" in page
    assert "gamma-eta/budget-control" in page
    md = write_markdown(tmp_path).read_text(encoding="utf-8")
    row = next(r for r in md.splitlines() if r.startswith("| gamma-eta | **e1**"))
    assert "**undecided** (not preregistered: no plan.json); width" in row
    assert "seeds to fit the band" in row


def test_a_later_plans_run_sits_under_its_study_with_its_title(out):
    """OUT/STUDY/FOLDER/STUDY (a second plan's run, `--out docs/evidence/STUDY/rerun-2`): listed
    right after its study, titled by the study's title and the folder, figures linked."""
    _study(out / "gamma-eta" / "rerun-2", "gamma-eta", [_claim(5, "agrees")])
    md = write_markdown(out).read_text(encoding="utf-8")
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    i = next(k for k, h in enumerate(heads) if h.endswith("(`gamma-eta`)"))
    assert heads[i + 1].endswith("— rerun-2 (`gamma-eta/rerun-2/gamma-eta`)"), heads
    assert heads[i + 1].startswith(heads[i].removesuffix(" (`gamma-eta`)"))
    assert "(gamma-eta/rerun-2/gamma-eta/figures/eta_star.png)" in md
