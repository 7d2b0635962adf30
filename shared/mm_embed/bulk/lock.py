"""One writer per output: an exclusive lock on ``<output>.lock``, held for the whole run.

The lock is an advisory ``flock`` (POSIX; ``msvcrt.locking`` on Windows) on an open file,
so the operating system releases it when the process ends in any way, ``kill -9``
included: a stale lock file is harmless and is taken over by the next run. The holder
writes its pid and host into the file so that a refused run can name it; it removes the
file when it finishes. Taking the lock checks that the locked file is still the one at
the path (a finishing holder may have just removed it), and tries again if not.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path
from types import TracebackType

from ..errors import MMEmbedError

__all__ = ["OutputLock", "OutputLocked", "lock_path"]

_ATTEMPTS = 20

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 1 << 20, os.SEEK_SET)  # a byte past the pid text, which stays readable
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class OutputLocked(MMEmbedError):
    """Another process is writing this output (``pid`` and ``host`` name it when known)."""

    def __init__(self, output: Path, pid: int | None, host: str | None) -> None:
        holder = "another process" if pid is None else f"another process (pid {pid}"
        if pid is not None:
            holder += f" on {host})" if host and host != socket.gethostname() else ")"
        super().__init__(
            f"{output} is being written by {holder}: wait for it to finish, or stop it "
            f"(its finished work is kept for --resume); the lock is {lock_path(output)}"
        )
        self.pid, self.host = pid, host


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


class OutputLock:
    """``with OutputLock(output):`` holds the output's lock or raises :class:`OutputLocked`."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                pid, host = _holder(fd)
                os.close(fd)
                raise OutputLocked(self.output, pid, host)
            if _is_at_path(fd, self.path):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                self._fd = fd
                return
            os.close(fd)  # the holder removed it between our open and lock: again
        raise OutputLocked(self.output, None, None)

    def release(self) -> None:
        if self._fd is None:
            return
        # Removed while still held, so a process that opens it now finds another file.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def _is_at_path(fd: int, path: Path) -> bool:
    try:
        here = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


def _holder(fd: int) -> tuple[int | None, str | None]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 256).decode("utf-8", "replace").split()
    except OSError:
        return None, None
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid, (text[1] if len(text) > 1 else None)
