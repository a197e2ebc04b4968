"""Preregistration: a study's plan, committed before its run, and the run's provenance.

A plan (`docs/evidence/STUDY/plan.json`) is written before any data exist and committed alone:

```json
{
  "study": "gamma-eta",
  "preset": "evidence",
  "options": ["--seeds", "5"],
  "seeds": 5,
  "command": "uv run lazyrich run gamma-eta --plan PLAN --out docs/evidence",
  "claims": [{"id": "...", "theory": 0.667, "margin": 0.08, "reason": "...", ...}],
  "sizing": {"CLAIM_ID": "expected 90% width 0.12 against 2 × margin = 0.16 with 5 seeds"}
}
```

The run records in `summary.json["provenance"]` the plan's sha256, the code's commit, whether
the work tree was clean, the start time and when the plan (this exact content) was first
committed. A claim is **preregistered** when the plan's hash matches and the plan was committed
before the run started; a changed plan is a new plan and needs a new run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._claims import Claim

PLAN_FIELDS = ("study", "preset", "options", "seeds", "command", "claims")
OPTIONAL_FIELDS = ("sizing", "notes", "supersedes")


def plan_sha256(path: str | Path) -> str:
    """The sha256 of a plan file's bytes (what the run records).

    **Arguments:**

    - `path`: the plan.

    **Returns:** the hex digest.
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_plan(path: str | Path) -> dict[str, Any]:
    """Read and check a plan.

    **Arguments:**

    - `path`: the plan (`plan.json`).

    **Returns:** the plan's fields as a dict; its `claims` as `Claim` objects.

    **Raises:** `ConfigError` with one line naming the file and the problem.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no plan at {path}: write one (see lazyrich.evidence)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(
            f"{path}: not a readable plan ({type(e).__name__}): fix or rewrite it"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a plan must be a JSON object")
    missing = [k for k in PLAN_FIELDS if k not in data]
    if missing:
        raise ConfigError(f"{path}: the plan lacks {', '.join(missing)}")
    extra = set(data) - set(PLAN_FIELDS) - set(OPTIONAL_FIELDS)
    if extra:
        raise ConfigError(f"{path}: unknown plan field(s) {', '.join(sorted(extra))}")
    if not isinstance(data["options"], list) or not all(
        isinstance(o, str) for o in data["options"]
    ):
        raise ConfigError(f"{path}: 'options' must be a list of command-line strings")
    if not isinstance(data["claims"], list) or not data["claims"]:
        raise ConfigError(f"{path}: 'claims' must be a non-empty list")
    try:
        claims = [Claim.from_dict(c) for c in data["claims"]]
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ConfigError(
            f"{path}: claim ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    return {**data, "claims": claims}


def write_plan(
    path: str | Path,
    *,
    study: str,
    preset: str,
    claims: list[Claim],
    options: list[str] | None = None,
    seeds: int | list[int],
    command: str,
    sizing: dict[str, str] | None = None,
    notes: str | None = None,
) -> Path:
    """Write a plan (indented JSON) before the run; commit it alone, then run `command`.

    **Arguments:**

    - `path`: where to write it (`docs/evidence/STUDY/plan.json`).
    - `study`, `preset`: what runs.
    - `claims`: the declared claims (their margins and reasons decide).
    - `options`: the study's command-line options, beyond the preset.
    - `seeds`: the seeds (a count, or the list).
    - `command`: the command that runs the plan.
    - `sizing`: per claim id, the expected interval width against 2 × margin (optional).
    - `notes`: anything else a referee should know (optional).

    **Returns:** `path`.
    """
    data: dict[str, Any] = {
        "study": study, "preset": preset, "options": list(options or []), "seeds": seeds,
        "command": command, "claims": [c.to_dict() for c in claims],
    }  # fmt: skip
    if sizing:
        data["sizing"] = sizing
    if notes:
        data["notes"] = notes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def committed_at(path: str | Path) -> str | None:
    """When a file's current content was first committed.

    **Arguments:**

    - `path`: a file in a git work tree.

    **Returns:** the commit time (ISO 8601, UTC), or `None` if this content is in no commit
    (uncommitted, or not in a git repository).
    """
    path = Path(path).resolve()
    cwd = path.parent
    blob = _git(["hash-object", str(path)], cwd)
    log = _git(["log", "--reverse", "--format=%H %cI", "--", path.name], cwd)
    if not blob or not log:
        return None
    for line in log.splitlines():
        commit, when = line.split(" ", 1)
        rel = _git(["ls-tree", commit, "--", path.name], cwd)
        if rel and blob in rel.split():
            return _utc(when)
    return None


def _utc(iso: str) -> str:
    t = _dt.datetime.fromisoformat(iso)
    return t.astimezone(_dt.UTC).isoformat(timespec="seconds")


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def provenance(plan_path: str | Path | None) -> dict[str, Any]:
    """What a run records before it starts.

    **Arguments:**

    - `plan_path`: the run's plan, or `None`.

    **Returns:** `{started_at, code_commit, code_clean}` and, with a plan, `plan_sha256` and
    `plan_committed_at` (`None` if not committed).
    """
    here = Path(plan_path).resolve().parent if plan_path else Path.cwd()
    status = _git(["status", "--porcelain", "--untracked-files=no"], here)
    out: dict[str, Any] = {
        "started_at": now_utc(),
        "code_commit": _git(["rev-parse", "HEAD"], here),
        "code_clean": None if status is None else status == "",
    }
    if plan_path is not None:
        out["plan_sha256"] = plan_sha256(plan_path)
        out["plan_committed_at"] = committed_at(plan_path)
    return out


def preregistered(prov: dict[str, Any] | None, plan_path: str | Path | None) -> tuple[bool, str]:
    """Whether a run was preregistered by a plan.

    **Arguments:**

    - `prov`: the run's `summary.json["provenance"]` (or `None`).
    - `plan_path`: the plan beside its results (or `None`).

    **Returns:** `(True, "")`, or `(False, why)` with `why` one phrase (no plan, a changed
    plan, a plan committed after the run started, ...).
    """
    if plan_path is None or not Path(plan_path).exists():
        return False, "no plan.json"
    if not prov or "plan_sha256" not in prov:
        return False, "the run recorded no plan"
    if prov["plan_sha256"] != plan_sha256(plan_path):
        return False, "plan.json changed after the run (its sha256 differs)"
    when = prov.get("plan_committed_at") or committed_at(plan_path)
    if when is None:
        return False, "plan.json was not committed"
    if _dt.datetime.fromisoformat(when) > _dt.datetime.fromisoformat(prov["started_at"]):
        return False, f"plan committed at {when}, after the run started at {prov['started_at']}"
    return True, ""
