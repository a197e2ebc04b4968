"""`lazyrich verify`: claims re-derived from committed per-unit values and a committed plan; a
one-digit change anywhere is caught; malformed files are one line, never a traceback."""

from __future__ import annotations

import json
import random
import subprocess
import zlib
from pathlib import Path

import pytest

from analysis._evidence import finish_claims
from analysis.cli import main
from lazyrich import evidence
from lazyrich.results import write_json

CLAIMS = [
    evidence.Claim(id="slope", paper="p", claim="slope is 2/3", theory=2 / 3, margin=0.08,
                   reason="half the gap to L = 4"),
    evidence.Claim(id="gain", paper="p", claim="gain above 0", theory=0.0, margin=0.01,
                   reason="1% accuracy", kind="above", estimator="bca"),
]  # fmt: skip
SAMPLES = {"slope": [0.61, 0.7, 0.66, 0.64, 0.69], "gain": [0.05, 0.04, 0.07, 0.06, 0.05]}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _study(root: Path, *, commit_plan: bool = True) -> Path:
    """A committed plan, then a 'run' that judges the claims and records its provenance."""
    folder = root / "toy"
    plan_path = evidence.write_plan(
        folder / "plan.json", study="toy", preset="evidence", options=[], seeds=5,
        command="uv run lazyrich run toy --plan plan.json", claims=CLAIMS,
    )  # fmt: skip
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.org")
    _git(root, "config", "user.name", "t")
    if commit_plan:
        _git(root, "add", "toy/plan.json")
        _git(root, "commit", "-q", "-m", "plan")
    prov = evidence.provenance(plan_path)
    rows = [evidence.judge(c, SAMPLES[c.id]) for c in CLAIMS]
    plan = evidence.read_plan(plan_path)
    rows = finish_claims(rows, preset="evidence", plan=plan, folder=folder)
    write_json(folder / "summary.json", {"study": "toy", "claims": rows, "provenance": prov})
    return folder


def test_verify_passes_on_an_honest_run(tmp_path, capsys):
    folder = _study(tmp_path)
    [check] = evidence.verify(tmp_path)
    assert check.preregistered and check.mismatches == [] and check.claims == 2
    assert main(["verify", str(tmp_path)]) == 0
    assert "toy: 2 claims, preregistered" in capsys.readouterr().out
    assert json.loads((folder / "summary.json").read_text())["claims"][0].get("samples") is None


def _flip_digit(text: str, needle: str) -> str:
    i = text.index(needle) + len(needle)
    while not text[i].isdigit() or text[i] == "0":
        i += 1
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]


def test_a_one_digit_change_in_the_summary_is_caught(tmp_path):
    folder = _study(tmp_path)
    s = folder / "summary.json"
    s.write_text(_flip_digit(s.read_text(), '"hi": '))
    [check] = evidence.verify(tmp_path)
    assert any("measured.hi" in m for m in check.mismatches), check.mismatches


def test_a_one_digit_change_in_a_unit_is_caught(tmp_path):
    folder = _study(tmp_path)
    units = evidence.read_units(folder / "units.nc")
    units["slope"][2] = 0.67  # was 0.66
    rows = [{"id": k, "samples": v} for k, v in units.items()]
    evidence.write_units(folder / "units.nc", rows)
    [check] = evidence.verify(tmp_path)
    assert any("slope: measured.value" in m for m in check.mismatches), check.mismatches
    assert main(["verify", str(tmp_path)]) == 1


def test_a_changed_plan_is_caught(tmp_path):
    folder = _study(tmp_path)
    p = folder / "plan.json"
    p.write_text(p.read_text().replace('"margin": 0.08', '"margin": 0.09'))
    [check] = evidence.verify(tmp_path)
    assert not check.preregistered and "sha256" in check.why_not
    assert any("margin" in m for m in check.mismatches)


def test_a_plan_committed_after_the_run_is_not_preregistered(tmp_path):
    folder = _study(tmp_path, commit_plan=False)
    _git(tmp_path, "add", "toy/plan.json")
    _git(tmp_path, "commit", "-q", "-m", "plan, late")
    summary = json.loads((folder / "summary.json").read_text())
    summary["provenance"]["started_at"] = "2000-01-01T00:00:00+00:00"
    write_json(folder / "summary.json", summary)
    [check] = evidence.verify(tmp_path)
    assert not check.preregistered and "after the run started" in check.why_not
    assert check.mismatches


def test_a_folder_without_a_plan_is_listed_not_failed(tmp_path, capsys):
    (tmp_path / "old").mkdir()
    write_json(tmp_path / "old" / "summary.json", {"claims": [{"id": "x"}]})
    assert main(["verify", str(tmp_path)]) == 0
    assert "not preregistered (no plan.json)" in capsys.readouterr().out


def test_verify_of_nothing_is_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no study folder" in err


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["units.nc", "summary.json", "plan.json"])
def test_malformed_files_are_one_line(tmp_path, capsys, name, seed):
    """Seeded truncations, bit flips and random bytes of each file verify reads."""
    folder = _study(tmp_path)
    target = folder / name
    good = target.read_bytes()
    rng = random.Random(zlib.crc32(name.encode()) + seed)
    cases = 0
    for kind in ("truncate", "flip", "random") * 10:
        data = bytearray(good)
        if kind == "truncate":
            data = data[: rng.randrange(len(good))]
        elif kind == "flip":
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        else:
            data = bytearray(rng.randbytes(rng.randrange(1, 400)))
        target.write_bytes(bytes(data))
        code = main(["verify", str(tmp_path)])  # never raises: a traceback fails the test
        out = capsys.readouterr()
        assert code in (0, 1, 2) and "Traceback" not in out.err + out.out
        if bytes(data) != good:
            cases += 1
            # a changed plan is always caught (its hash); a flipped bit in a summary's or
            # units file's numbers is caught, one in free text (a note, the provenance) is not
            assert code != 0 or name != "plan.json"
    target.write_bytes(good)
    assert main(["verify", str(tmp_path)]) == 0 and cases >= 29
