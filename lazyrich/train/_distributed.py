"""Where a sweep runs: devices for the run axis, and processes of a multi-host launch.

- Devices: the run axis of a chunk is sharded over a 1-D mesh (`NamedSharding`, axis
  `"runs"`). By default every local accelerator is used; on CPU a single device is used
  (forced host devices are virtual; pass `devices=` to shard over them anyway).
- Processes: under a cluster launcher, `init_distributed()` calls
  `jax.distributed.initialize()`; process `p` of `P` then computes chunks `c` with
  `c % P == p` and saves them to the study's shared `chunks/` directory; every process then
  loads the others' chunks, and only process 0 writes the study's files
  (`lazyrich.results.atomic_write_bytes` is a no-op elsewhere, chunks excepted). Launch
  with SLURM (`srun`, auto-detected) or by setting `LAZYRICH_COORDINATOR=host:port`,
  `LAZYRICH_NUM_PROCESSES` and `LAZYRICH_PROCESS_ID` for each process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import ConfigError, require


def init_distributed() -> tuple[int, int]:
    """Initialise `jax.distributed` when launched as several processes; `(index, count)`.

    Multi-process when `LAZYRICH_NUM_PROCESSES > 1` (then `LAZYRICH_COORDINATOR` is required
    and `LAZYRICH_PROCESS_ID` defaults to 0) or `SLURM_NTASKS > 1`; otherwise nothing is
    initialised.

    **Returns:** `(jax.process_index(), jax.process_count())`, `(0, 1)` for one process.

    **Raises:** `ConfigError` when `LAZYRICH_NUM_PROCESSES > 1` without
    `LAZYRICH_COORDINATOR`.
    """
    env = os.environ
    if "LAZYRICH_NUM_PROCESSES" in env and int(env["LAZYRICH_NUM_PROCESSES"]) > 1:
        require(
            "LAZYRICH_COORDINATOR" in env,
            "set LAZYRICH_COORDINATOR=host:port for a multi-process run",
        )
        jax.distributed.initialize(
            coordinator_address=env["LAZYRICH_COORDINATOR"],
            num_processes=int(env["LAZYRICH_NUM_PROCESSES"]),
            process_id=int(env.get("LAZYRICH_PROCESS_ID", "0")),
        )
    elif int(env.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()
    return jax.process_index(), jax.process_count()


def default_devices(limit: int | None = None) -> list[Any]:
    """Local devices for the run axis: all local accelerators, or one CPU device.

    `limit` (a study's `--devices`, carried by its `StudyDir`) takes the first `limit` local
    devices instead, CPU host devices included.

    **Arguments:**

    - `limit`: how many local devices to use (`>= 1`), or `None` for the default above.

    **Returns:** a list of `jax.Device`s.

    **Raises:** `ConfigError` for `limit < 1`.
    """
    local = jax.local_devices()
    devices = local if local[0].platform != "cpu" else local[:1]
    if limit is not None:
        require(limit >= 1, f"--devices must be >= 1, got {limit}")
        devices = local[:limit]
    return devices


def run_sharding(devices: Sequence[Any]) -> NamedSharding | None:
    """Sharding of arrays whose leading axis is the run axis, or None for one device.

    **Arguments:**

    - `devices`: the devices of the run axis (e.g. `default_devices()`).

    **Returns:** a `NamedSharding` over a 1-D mesh with axis `"runs"` (`PartitionSpec("runs")`),
    or `None` when there is at most one device.
    """
    if len(devices) <= 1:
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))


def barrier(name: str, timeout_s: float = 3600.0) -> None:
    """Wait until every process of a multi-process launch reaches `barrier(name)`.

    Returns at once in a single-process run.

    **Arguments:**

    - `name`: the barrier's name, the same on every process (unique per barrier).
    - `timeout_s`: how long to wait, in seconds (default one hour).

    **Raises:** `ConfigError` when several processes run but `jax.distributed` is not
    initialised.
    """
    if jax.process_count() <= 1:
        return
    from jax._src import distributed  # the runtime client; no public barrier API exists

    client = distributed.global_state.client
    if client is None:
        raise ConfigError("jax.distributed is not initialised: call init_distributed()")
    client.wait_at_barrier(f"lazyrich-{name}", int(timeout_s * 1000))
