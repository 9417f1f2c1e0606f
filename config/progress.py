"""A progress bar for management commands: a redrawn line on a terminal, a line per update in logs.

Long commands (imports, exports) report ``(label, done, total or None)``; this draws it on the command's stderr,
at most a few times a second, so piping the command's stdout stays clean.
"""

from __future__ import annotations

import time

WIDTH = 30


class CommandProgress:
    def __init__(self, stream, unit: str = "rows", every_s: float = 0.25):
        self.stream = stream
        self.unit = unit
        self.every_s = every_s
        self.tty = bool(getattr(getattr(stream, "_out", stream), "isatty", lambda: False)())
        self.started = time.monotonic()
        self.last = 0.0
        self.drawn = False
        self.label = None
        self.shown: tuple | None = None

    def __call__(self, label: str, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if label != self.label:  # a new phase: its own rate, on its own line
            self.close()
            self.label, self.started = label, now
        finished = bool(total and done >= total)
        if (now - self.last < self.every_s and not finished) or self.shown == (label, done):
            return
        self.last, self.shown = now, (label, done)
        elapsed = now - self.started
        if total:
            filled = int(WIDTH * min(done, total) / total)
            line = f"{label:<9} [{'#' * filled}{'.' * (WIDTH - filled)}] {done:,}/{total:,} {self.unit}"
        else:
            line = f"{label:<9} {done:,} {self.unit}"
        if elapsed >= 0.5:  # a rate from the first instants means nothing
            line += f" ({done / elapsed:,.0f}/s)"
        self.stream.write(("\r" + line.ljust(78)) if self.tty else line, ending="" if self.tty else "\n")
        self.drawn = True

    def close(self) -> None:
        """End the bar's line (call before printing anything else)."""
        if self.tty and self.drawn:
            self.stream.write("")
        self.drawn = False
