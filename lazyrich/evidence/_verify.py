"""Re-derive every claim from committed results: the per-unit values (`units.nc`) and the plan.

A study's evidence folder holds `plan.json` (committed before the run), `summary.json` (the
claims as the run judged them, and its provenance) and `units.nc`: one value per unit of
replication per claim, the numbers every interval is computed from (a compact netCDF: a
`samples` array over `(claim, unit)`, padded with NaN, and `count`, the units per claim).

`verify` recomputes each claim's interval and verdict (`smoke` for a run whose summary says
`"smoke": true`, a quick preset's) from `units.nc` with the plan's theory,
margin and estimator, and compares them with `summary.json`; it checks the plan's hash and
that the plan was committed before the run started. Every file is read as untrusted: a
malformed one is one line, never a traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError
from ._claims import Claim, measure, verdict
from ._plan import preregistered, read_plan

UNITS_FILE = "units.nc"
RTOL, ATOL = 1e-9, 1e-12


def write_units(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write the per-unit values of claims-table rows to a netCDF file.

    **Arguments:**

    - `path`: the file (`units.nc`).
    - `rows`: rows from `judge` (their `id` and `samples`).

    **Returns:** `path`.
    """
    ids = [str(r["id"]) for r in rows]
    lengths = [len(r.get("samples") or []) for r in rows]
    width = max(lengths, default=0)
    table = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        vals = [math.nan if v is None else float(v) for v in (r.get("samples") or [])]
        table[i, : len(vals)] = vals
    ds = xr.Dataset(
        {
            "samples": (("claim", "unit"), table),
            "count": (("claim",), np.asarray(lengths, np.int32)),
        },
        coords={"claim": np.asarray(ids, dtype=object)},
        attrs={"about": "one value per unit of replication per claim (lazyrich.evidence)"},
    )
    from ..results import write_dataset

    path = Path(path)
    write_dataset(path, ds)
    return path


def read_units(path: str | Path) -> dict[str, list[float]]:
    """The per-unit values per claim id from `write_units`' file.

    **Arguments:**

    - `path`: the file.

    **Returns:** `{claim id: [values]}`.

    **Raises:** `ConfigError`, one line, if the file is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: missing: rerun the study (it writes the per-unit values)")
    try:
        with xr.open_dataset(path, engine="scipy") as ds:
            ids = [str(i) for i in ds["claim"].values]
            table = np.asarray(ds["samples"].values, np.float64)
            count = np.asarray(ds["count"].values, np.int64)
    except Exception as e:  # an untrusted file: any failure to parse is one line
        raise ConfigError(f"{path}: not a readable units file ({type(e).__name__})") from None
    if table.ndim != 2 or table.shape[0] != len(ids) or count.shape != (len(ids),):
        raise ConfigError(f"{path}: malformed units file (shapes {table.shape}, {count.shape})")
    if np.any(count < 0) or np.any(count > table.shape[1]):
        raise ConfigError(f"{path}: malformed units file (a count outside 0..{table.shape[1]})")
    return {i: [float(v) for v in table[k, : count[k]]] for k, i in enumerate(ids)}


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= ATOL + RTOL * max(abs(a), abs(b))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({type(e).__name__})") from None


@dataclass
class StudyCheck:
    """What `verify` found for one study folder.

    **Fields:** `study` (the folder's name), `claims` (rows in its summary), `preregistered`,
    `why_not` (why not, one phrase), `mismatches` (one line each; empty when all re-derive).
    """

    study: str
    claims: int = 0
    preregistered: bool = False
    why_not: str = ""
    mismatches: list[str] = field(default_factory=list)


def verify_study(folder: str | Path) -> StudyCheck:
    """Recompute every claim of one evidence folder (see the module docstring).

    **Arguments:**

    - `folder`: holds `summary.json` and, if preregistered, `plan.json` and `units.nc`.

    **Returns:** a `StudyCheck`.
    """
    folder = Path(folder)
    check = StudyCheck(folder.name)
    try:
        summary = _read_json(folder / "summary.json")
        if not isinstance(summary, dict):
            raise ConfigError(f"{folder / 'summary.json'}: not a JSON object")
        rows = summary.get("claims") or []
        if not isinstance(rows, list):
            raise ConfigError(f"{folder / 'summary.json'}: 'claims' is not a list")
        check.claims = len(rows)
        plan_path = folder / "plan.json"
        check.preregistered, check.why_not = preregistered(summary.get("provenance"), plan_path)
        if not plan_path.exists():
            return check
        plan = read_plan(plan_path)
        units = read_units(folder / UNITS_FILE)
    except ConfigError as e:
        check.mismatches.append(str(e))
        return check
    if not check.preregistered:
        check.mismatches.append(f"{folder.name}: not preregistered: {check.why_not}")
    by_id = {r.get("id"): r for r in rows if isinstance(r, dict)}
    smoke = summary.get("smoke") is True
    for claim in plan["claims"]:
        check.mismatches += _check_claim(folder.name, claim, by_id.get(claim.id), units, smoke)
    return check


def _check_claim(
    study: str, claim: Claim, row: Any, units: dict[str, list[float]], smoke: bool
) -> list[str]:
    where = f"{study}/{claim.id}"
    if not isinstance(row, dict):
        return [f"{where}: in the plan but not in summary.json"]
    if claim.id not in units:
        return [f"{where}: no per-unit values in {UNITS_FILE}"]
    out = []
    for name, want in [*claim.to_dict().items(), ("rule", claim.rule)]:
        if row.get(name) != want:
            out.append(f"{where}: {name} {row.get(name)!r} in summary.json, plan says {want!r}")
    m = measure(claim, units[claim.id])
    got: dict[str, Any] = row["measured"] if isinstance(row.get("measured"), dict) else {}
    for name, want in (("value", m.value), ("lo", m.lo), ("hi", m.hi)):
        if not _close(got.get(name), want):
            out.append(f"{where}: measured.{name} is {got.get(name)!r}, recomputed {want!r}")
    if got.get("n") != m.n:
        out.append(f"{where}: measured.n is {got.get('n')!r}, recomputed {m.n}")
    v = "smoke" if smoke else verdict(claim, m.lo, m.hi)
    if row.get("verdict") != v:
        out.append(f"{where}: verdict {row.get('verdict')!r}, recomputed {v!r}")
    return out


def verify(root: str | Path) -> list[StudyCheck]:
    """Check every study folder under `root` (each with a `summary.json`), in name order.

    **Arguments:**

    - `root`: a folder of study folders (e.g. `docs/evidence`; their subfolders with a
      `summary.json`, controls and reruns, too), or one study folder.

    **Returns:** one `StudyCheck` per study folder.

    **Raises:** `ConfigError` if `root` holds no study folder.
    """
    root = Path(root)
    if (root / "summary.json").is_file():
        folders = [root]
    else:
        # each study, and its controls or reruns kept in subfolders (STUDY/CONTROL/)
        folders = sorted(p.parent for p in root.rglob("summary.json"))
    if not folders:
        raise ConfigError(f"{root}: no study folder (a folder with summary.json) to verify")
    checks = [verify_study(f) for f in folders]
    for f, c in zip(folders, checks, strict=True):
        c.study = f.relative_to(root).as_posix() if f != root else f.name
    return checks
