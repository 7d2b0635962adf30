"""A resume's view of the checkpoint: the committed windows, checked against the input
as it is read again and then written to the output, and the finished batches after
them, reused when their records are unchanged (see :class:`~.engine.Replay`)."""

from __future__ import annotations

from .assembly import OutputAssembly
from .batches import BatchResult
from .checkpoint import Checkpoint, CheckpointError, Part
from .fingerprint import Prints, decode_prints

__all__ = ["CheckpointReplay"]


class CheckpointReplay:
    """The :class:`~.engine.Replay` of a checkpoint.

    The committed windows cover ``done`` items (a last window shorter than
    ``window_items``, left by a run stopped between its last commit and its clean-up,
    is not counted: its items are embedded again). Window ``n`` is read when the engine
    checks its first batch and written to ``assembly`` once all its batches passed.
    """

    def __init__(self, checkpoint: Checkpoint, window_items: int, assembly: OutputAssembly):
        self.checkpoint, self.window_items, self.assembly = checkpoint, window_items, assembly
        windows = checkpoint.windows()
        if windows and _size(checkpoint.read_window(windows[-1])) < window_items:
            windows = windows[:-1]
        self._done = len(windows) * window_items
        self.finished = checkpoint.batches(self._done)
        self.resumed = 0
        self._window: tuple[int, Part, Prints] | None = None
        self._cached: dict[int, Part] = {}

    @property
    def done(self) -> int:
        return self._done

    @property
    def next_window(self) -> int:
        return self._done // self.window_items

    def expect(self, start: int, size: int) -> tuple[Prints, str]:
        number, offset = divmod(start, self.window_items)
        if self._window is None or self._window[0] != number:
            part = self.checkpoint.read_window(number)
            self._window = (number, part, decode_prints(str(part.meta.get("prints", ""))))
        _, part, prints = self._window
        origin = self.checkpoint.window_path(number).name
        if int(part.meta.get("start", -1)) != number * self.window_items:
            origin += f", which holds the items from {part.meta.get('start')} on"
        return prints[offset : offset + size], origin

    def skipped(self, result: BatchResult) -> None:
        """A checked batch of the written part: its window is written once complete."""
        self.resumed += result.size
        end = result.start + result.size
        if end % self.window_items == 0:
            assert self._window is not None and self._window[0] == result.start // self.window_items
            part = self._window[1]
            self.assembly.shape.learn(part)
            self.assembly.emit(part)
            self._window = None

    def reusable(self, start: int, prints: Prints) -> bool:
        if start not in self.finished:
            return False
        try:
            part = self.checkpoint.read_batch(start)
        except CheckpointError:
            return False  # damaged: embedded again, and written anew
        stored = decode_prints(str(part.meta.get("prints", "")))
        if len(stored) != len(prints) or bool((stored != prints).any()):
            return False  # its records changed: embedded again
        self._cached[start] = part
        return True

    def cached(self, start: int) -> Part:
        """The finished batch :meth:`reusable` accepted at ``start``."""
        return self._cached.pop(start)


def _size(part: Part) -> int:
    return int(part.meta["size"])
