"""The evidence protocol end to end on a tiny real study: `lazyrich plan`, commit, `lazyrich run
--plan`, `lazyrich verify`; and the plan's rules (options only from the plan, no overwrite)."""

from __future__ import annotations

import json
import subprocess

from analysis.cli import main
from lazyrich import evidence

TINY = [
    "--n-train", "400", "--n-test", "100", "--width", "8", "--depth", "1", "--batch", "50",
    "--sample-epochs", "2", "--samples-per-epoch", "4", "--ds", "2", "4",
    "--subspace-epochs", "2", "--pbfgs-batch", "100", "--seeds", "0", "1",
    "--tuned-lrs", "0.1", "--tuned-epochs", "3", "--noise-epochs", "3",
]  # fmt: skip


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_plan_commit_run_verify(tmp_path, capsys):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    assert main(["plan", "dldr", "--preset", "quick", "--out", str(tmp_path), *TINY]) == 0
    plan_path = tmp_path / "dldr" / "plan.json"
    plan = evidence.read_plan(plan_path)
    assert plan["options"] == TINY and plan["seeds"] == [0, 1] and plan["preset"] == "quick"
    assert all(c.margin >= 0 and c.reason for c in plan["claims"])
    # a second plan at the same place is refused: a changed plan is a new plan
    assert main(["plan", "dldr", "--out", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    _git(tmp_path, "add", "dldr/plan.json")
    _git(tmp_path, "commit", "-q", "-m", "plan")
    # options beside --plan are refused (they come from the plan)
    assert main(["run", "dldr", "--plan", str(plan_path), "--width", "4"]) == 2
    assert "come from the plan" in capsys.readouterr().err
    assert main(["run", "dldr", "--plan", str(plan_path), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "dldr" / "summary.json").read_text())
    prov = summary["provenance"]
    assert prov["plan_sha256"] == evidence.plan_sha256(plan_path) and prov["plan_committed_at"]
    assert summary["smoke"] is True and {r["verdict"] for r in summary["claims"]} == {"smoke"}
    assert [r["id"] for r in summary["claims"]] == [c.id for c in plan["claims"]]
    capsys.readouterr()
    assert main(["verify", str(tmp_path)]) == 0
    assert "dldr: " in capsys.readouterr().out
    [check] = evidence.verify(tmp_path)
    assert check.preregistered and not check.mismatches
