"""The `lazyrich` command: run studies, build the report, run the demo.

    lazyrich run STUDY [--preset quick|paper] [--out DIR] [--resume] [study options]
    lazyrich report [--out DIR] [--markdown]
    lazyrich demo [--out DIR]
    lazyrich plan STUDY [--preset evidence] [--out DIR] [study options]
    lazyrich verify [DIR]

Every bad argument, missing data file or impossible configuration ends with one line on
stderr naming the problem and the fix, and exit code 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import overload

from lazyrich.errors import ConfigError

from .studies import DEMO_ORDER, STUDIES, get_preset, get_study

USAGE = f"""usage: lazyrich COMMAND ...

Lazy (kernel) versus rich (feature-learning) training: studies and their report.

commands:
  run STUDY    run one study; STUDY is one of: {", ".join(STUDIES)}
               options: --preset quick|evidence|paper (default quick), --out DIR (default
               runs/), --resume (continue an interrupted sweep), --data-dir DIR (local
               MNIST / CIFAR files for exact-gn, dldr, active-params, complexity;
               default $LAZYRICH_DATA), --plan PLAN (a committed plan: the preset and
               options come from it, its margins decide), --devices N (shard sweeps over
               the first N local devices; default: every GPU), and the study's own options (see
               `lazyrich run STUDY --help`)
  report       collect every study under --out DIR (default runs/) into DIR/report.html,
               claims and verdicts first; --markdown also writes DIR/EVIDENCE.md
  demo         run the quick preset of every study, then the report (a few minutes on a CPU);
               quick presets are smoke: their claims are shown without agree/disagree
  plan STUDY   write DIR/STUDY/plan.json (default DIR docs/evidence): the claims with their
               margins, the preset, options, seeds and command; commit it alone, then
               `lazyrich run STUDY --plan PLAN --out DIR` runs it and records its provenance
  verify       recompute every claim under DIR (default docs/evidence) from the committed
               units.nc and plan.json; one line per mismatch, exit 1 if any

Results: DIR/STUDY/config.json, results.nc (xarray), summary.json, figures/*.png.
"""


@overload
def _pop_option(args: list[str], name: str, default: str) -> str: ...
@overload
def _pop_option(args: list[str], name: str, default: None) -> str | None: ...
def _pop_option(args: list[str], name: str, default: str | None) -> str | None:
    """Remove `--name VALUE` or `--name=VALUE` from `args` and return VALUE."""
    for i, a in enumerate(args):
        if a == name:
            if i + 1 >= len(args):
                raise ConfigError(f"{name} needs a value")
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if a.startswith(name + "="):
            del args[i]
            return a.split("=", 1)[1]
    return default


def _pop_flag(args: list[str], name: str) -> bool:
    if name in args:
        args.remove(name)
        return True
    return False


def run_study(
    name: str,
    preset: str,
    out: Path,
    *,
    resume: bool,
    options: Sequence[str] = (),
    devices: int | None = None,
    plan_path: Path | None = None,
):
    """Run study `name` with `preset` overridden by command-line `options`, its engine calls
    sharded over the first `devices` local devices (`None`: the default devices). With
    `plan_path` (a preregistered plan), the preset and options come from the plan and the
    claims are judged by its margins; the run records the plan's hash and provenance."""
    import jax
    import tyro

    from lazyrich.evidence import provenance
    from lazyrich.results import StudyDir, write_json
    from lazyrich.train import barrier

    from ._evidence import SMOKE_PRESETS, check_seeds, finish_claims, plan_run

    study = get_study(name)
    plan = None
    if plan_path is not None:
        plan, preset = plan_run(plan_path, name, list(options))
        options = plan["options"]
    default = get_preset(study, preset)
    config = tyro.cli(
        type(default),
        args=list(options),
        default=default,
        prog=f"lazyrich run {name}",
        description=f"{study.TITLE}\n\n{study.DESCRIPTION}\n\nCommon options: --preset "
        f"{'|'.join(study.PRESETS)} (default quick), --out DIR (default runs/), --resume.",
    )
    study.validate(config)  # before anything is written: a bad option loses no results
    if plan is not None:
        check_seeds(plan, config)
    store = StudyDir(out, name)
    record = {"study": name, "preset": preset, **dataclasses.asdict(config)}
    with contextlib.ExitStack() as held:
        if jax.process_index() == 0:  # one writer per directory: process 0 holds the lock
            held.enter_context(store.prepare().lock())
            store.start(record, resume=resume)
        barrier(f"start-{name}")  # other processes write chunks only after process 0 started
        prov = provenance(plan_path)  # the start time, the code's commit, the plan's hash
        t0 = time.perf_counter()
        summary = study.run(config, store, progress=True, devices=devices)
        summary = {"study": name, "preset": preset, **summary, "provenance": prov}
        summary["smoke"] = preset in SMOKE_PRESETS  # quick: claims shown, never decided
        if jax.process_index() == 0 and summary.get("claims") is not None:
            summary["claims"] = finish_claims(
                summary["claims"], preset=preset, plan=plan, folder=store.path
            )
        summary["wall_time_s"] = round(time.perf_counter() - t0, 2)
        write_json(store.summary_path, summary)
        barrier(f"done-{name}")
    if jax.process_index() == 0:
        print(f"{name}: wrote {store.path} in {summary['wall_time_s']:.0f} s")
    return summary


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, args = argv[0], list(argv[1:])
    if command == "run":
        if not args or args[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        from lazyrich.train import init_distributed

        init_distributed()  # before anything touches a JAX backend
        study, rest = args[0], args[1:]
        module = get_study(study)  # unknown study: one line before anything else
        preset = _pop_option(rest, "--preset", "quick")
        plan_path = _pop_option(rest, "--plan", None)
        out = Path(_pop_option(rest, "--out", "runs"))
        resume = _pop_flag(rest, "--resume")
        # a study that reads data files has a data_dir field and takes --data-dir itself
        own = "data_dir" in {f.name for f in dataclasses.fields(get_preset(module, preset))}
        if not own and _pop_option(rest, "--data-dir", None) is not None:
            raise ConfigError(
                f"{study} reads no data files (its tasks are generated): drop --data-dir"
            )
        devices = _pop_option(rest, "--devices", None)
        if devices is not None and (not devices.isdigit() or int(devices) < 1):
            raise ConfigError(f"--devices must be a whole number >= 1, got {devices}")
        run_study(
            study,
            preset,
            out,
            resume=resume,
            options=rest,
            devices=None if devices is None else int(devices),
            plan_path=None if plan_path is None else Path(plan_path),
        )
        return 0
    if command in ("verify", "plan"):
        from ._verify_cli import plan_command, verify_command

        return verify_command(args) if command == "verify" else plan_command(args)
    if command in ("report", "demo"):
        if "-h" in args or "--help" in args:
            print(USAGE)
            return 0
        out = Path(_pop_option(args, "--out", "runs"))
        markdown = command == "report" and _pop_flag(args, "--markdown")
        if args:
            raise ConfigError(f"unexpected arguments for {command}: {' '.join(args)}")
        from .report import write_markdown, write_report

        if command == "demo":
            t0 = time.perf_counter()
            for name in DEMO_ORDER:
                run_study(name, "quick", out, resume=False)
            print(f"demo: all studies done in {time.perf_counter() - t0:.0f} s")
        path = write_report(out)
        print(f"report: {path.resolve()}")
        if markdown:
            print(f"markdown: {write_markdown(out).resolve()}")
        return 0
    raise ConfigError(
        f"unknown command {command!r}: use run, report, demo, plan or verify (see lazyrich --help)"
    )


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as one line, `lazyrich: warning: MESSAGE`, above any progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(f"lazyrich: warning: {message}", file=sys.stderr if file is None else file)


def _error_line(message: str) -> None:
    """Print `message` on a line of its own: progress bars that an error interrupted are
    ended first (their line closed), so the error is never glued to a bar."""
    from tqdm.auto import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    print(message, file=sys.stderr)


def _storage_error(e: OSError) -> ConfigError | None:
    """The one-line error for a full or unwritable disk that a write outside
    `lazyrich.results` hit (those writes raise `StorageError` themselves)."""
    from lazyrich.results import storage_error

    return storage_error(e.filename or "a file", e)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lazyrich` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            code = _main(argv)
    except ConfigError as e:
        _error_line(f"lazyrich: error: {e}")
        code = 2
    except OSError as e:
        error = _storage_error(e)
        if error is None:
            raise
        _error_line(f"lazyrich: error: {error}")
        code = 2
    except KeyboardInterrupt:
        _error_line("lazyrich: interrupted; finished chunks are kept, rerun with --resume")
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
