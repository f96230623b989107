"""Progress lines with throughput and ETA (plain lines: readable in slurm logs too)."""
from __future__ import annotations

import datetime
import sys
import time
from typing import Callable, Optional, TextIO


def _eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class Progress:
    """Prints ``desc: done/total (pct), rate img/s, ETA h:mm:ss`` at most every ``interval_s``.

    Args:
        total (int): Images to process.
        desc (str): Prefix of each line.
        interval_s (float): Seconds between lines (the last line is always printed).
            Defaults to 30.
        enabled (bool): Print at all. Defaults to True.
        stream (TextIO, optional): Where to print. Defaults to ``sys.stderr``.
        clock (Callable[[], float]): Time source. Defaults to ``time.perf_counter``.
    """

    def __init__(self, total: int, desc: str, interval_s: float = 30.0, enabled: bool = True,
                 stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.desc = int(total), desc
        self.interval_s, self.enabled = float(interval_s), enabled
        self.stream = stream
        self.clock = clock
        self.start = self._last = clock()
        self.done = 0

    @property
    def rate(self) -> float:
        """Images per second so far."""
        elapsed = self.clock() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """The current progress line."""
        rate = self.rate
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = self.total - self.done
        eta = _eta(left / rate) if rate > 0 else '?'
        return (f'{self.desc}: {self.done:,}/{self.total:,} images ({pct:.1f}%), '
                f'{rate:,.1f} img/s, ETA {eta}')

    def update(self, n: int) -> None:
        """Count ``n`` more images; print a line if ``interval_s`` has passed."""
        self.done += n
        now = self.clock()
        if self.enabled and (now - self._last >= self.interval_s or self.done >= self.total):
            self._last = now
            print(self.line(), file=self.stream or sys.stderr, flush=True)
