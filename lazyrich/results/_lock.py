"""One writer per study directory: a lock file held with `fcntl.flock` for the whole run.

The lock is `OUT/STUDY/.lock`. A run opens it and takes an exclusive, non-blocking
`flock`; the file then records the holder's pid, host and start time (JSON), so that a second
run can name it. The operating system releases a `flock` when its holder dies, however it
dies (SIGKILL, a crash, a node reboot for a local disk), so a lock left by a dead run is
stale by construction: the next run takes it over without asking anyone to delete files. A
run that finishes (or fails with an error) removes the file.

Removing a locked file races with a run that opened it just before the removal; after taking
the lock, a run therefore checks that the path still names the file it locked, and starts
over if not.

Where the file system does not support `flock` (`ENOLCK`, `EOPNOTSUPP`), the record decides:
a holder on this host counts as alive while `os.kill(pid, 0)` finds its process; a holder on
another host counts as alive (the message names the file to delete if that run is gone).

In a multi-process launch (`jax.distributed`) only process 0 takes the lock; the other
processes of the launch write chunks only after process 0 has passed a barrier, so a second
launch into the same directory stops at its process 0 before any of its processes writes.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from ..errors import ConfigError

_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def _describe(record: dict) -> str:
    if not record:
        return "another run (it has not recorded its pid yet)"
    return (
        f"another run (pid {record.get('pid')} on host {record.get('host')}, "
        f"started {record.get('started')})"
    )


def _read_record(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        record = json.loads(raw.decode())
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def _alive(record: dict) -> bool:
    """Whether the run a record names may still be running (used without `flock` only)."""
    if not record:
        return False
    if record.get("host") != socket.gethostname():
        return True
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user
    return True


class StudyLock:
    """The lock of one study directory; a context manager (`with StudyLock(path): ...`)."""

    def __init__(self, directory: Path | str):
        """**Arguments:**

        - `directory`: the study directory (`OUT/STUDY`); it must exist. The lock file is
          `directory/.lock`.
        """
        self.path = Path(directory) / ".lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def _refuse(self, record: dict) -> ConfigError:
        return ConfigError(
            f"{self.path.parent} is in use by {_describe(record)}; wait for it to finish, "
            f"stop it, or choose another --out (if that run is gone, delete {self.path})"
        )

    def acquire(self) -> StudyLock:
        """Take the lock, or raise a one-line `ConfigError` naming the run that holds it.

        **Returns:** `self`.
        """
        if self._fd is not None:
            return self
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                record = _read_record(fd)
                if e.errno in _BUSY or _alive(record):
                    os.close(fd)
                    raise self._refuse(record) from None
                # no flock on this file system, and the recorded holder is gone: take over
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # removed by its previous holder after we opened it
                os.close(fd)
                continue
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            self._fd = fd
            return self
        raise ConfigError(f"could not take the lock {self.path}: it keeps being replaced")

    def release(self) -> None:
        """Remove the lock file and release the lock (a no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass  # already gone, or the directory became read-only: the lock is freed anyway
        finally:
            os.close(fd)

    def __enter__(self) -> StudyLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
