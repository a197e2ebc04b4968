"""The `lazyrich` command: run studies, build the report, run the demo.

    lazyrich run STUDY [--preset quick|paper] [--out DIR] [--resume] [study options]
    lazyrich report [--out DIR] [--markdown]
    lazyrich demo [--out DIR]

Every bad argument, missing data file or impossible configuration ends with one line on
stderr naming the problem and the fix, and exit code 2.
"""

from __future__ import annotations

import dataclasses
import sys
import time
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
               default $LAZYRICH_DATA), --devices N (shard sweeps over the first N local
               devices; default: every GPU), and the study's own options (see
               `lazyrich run STUDY --help`)
  report       collect every study under --out DIR (default runs/) into DIR/report.html,
               claims and verdicts first; --markdown also writes DIR/EVIDENCE.md
  demo         run the quick preset of every study, then the report (a few minutes on a CPU)

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
):
    """Run study `name` with `preset` overridden by command-line `options`, its engine calls
    sharded over the first `devices` local devices (`None`: the default devices)."""
    import jax
    import tyro

    from lazyrich.results import StudyDir, write_json
    from lazyrich.train import barrier

    study = get_study(name)
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
    store = StudyDir(out, name, devices=devices)
    record = {"study": name, "preset": preset, **dataclasses.asdict(config)}
    if jax.process_index() == 0:
        store.start(record, resume=resume)
    barrier(f"start-{name}")  # other processes write chunks only after process 0 cleaned up
    t0 = time.perf_counter()
    summary = study.run(config, store, progress=True)
    summary = {"study": name, "preset": preset, **summary}
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
        )
        return 0
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
    raise ConfigError(f"unknown command {command!r}: use run, report or demo (see lazyrich --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lazyrich` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv)
    except ConfigError as e:
        print(f"lazyrich: error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(
            "lazyrich: interrupted; finished chunks are kept, rerun with --resume", file=sys.stderr
        )
        code = 130
    return code


if __name__ == "__main__":
    sys.exit(main())
