"""The exit status of ``mm-embed embed``: one table, here.

========  ===============  ==============================================================
code      name             meaning
========  ===============  ==============================================================
0         ``COMPLETE``     the output is complete; no item was rejected
1         ``REJECTS``      the output is complete; some items were rejected (rejects file)
2         ``REFUSED``      nothing was run: bad arguments or input file, missing
                           credentials, output exists, settings differ from the
                           checkpoint, the input changed inside the finished part, or
                           another process is writing the output
3         ``ABORTED``      stopped before the end: the provider stayed down or refused
                           the credentials or model, ``--strict`` / ``--max-rejects``, or
                           the output could not be written; ``--resume`` continues
70        ``CRASHED``      an internal error (a bug): one line on stderr names the file
                           holding the traceback; ``--resume`` continues
130       ``INTERRUPTED``  stopped by Ctrl-C or SIGTERM; ``--resume`` continues
========  ===============  ==============================================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """Exit status of ``mm-embed embed`` (see the module table)."""

    COMPLETE = 0
    REJECTS = 1
    REFUSED = 2
    ABORTED = 3
    #: ``EX_SOFTWARE`` of sysexits.h; never 1, which a finished run with rejects uses.
    CRASHED = 70
    #: 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C.
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """One line for ``--help``."""
        return _MEANINGS[self]

    @classmethod
    def help_text(cls) -> str:
        """The table in one paragraph (the command's epilog)."""
        return "exit status: " + "; ".join(f"{int(c)} {c.meaning}" for c in cls)


_MEANINGS = {
    ExitCode.COMPLETE: "complete",
    ExitCode.REJECTS: "complete, some items rejected",
    ExitCode.REFUSED: (
        "refused, nothing run (bad arguments or input, output exists or locked by "
        "another run, settings or input differ from the checkpoint)"
    ),
    ExitCode.ABORTED: "aborted by the provider, --strict/--max-rejects or a write error (resumable)",
    ExitCode.CRASHED: "internal error; the traceback is in the file named (resumable)",
    ExitCode.INTERRUPTED: "interrupted (resumable)",
}
