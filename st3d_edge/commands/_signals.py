"""Stopping a batch on Ctrl-C or SIGTERM between items, never in the middle of one.

Python raises KeyboardInterrupt wherever the main thread happens to be; inside scipy's
multi-threaded cKDTree query that has crashed the interpreter (a segfault about one Ctrl-C in
four). While a batch runs, the first signal therefore only raises a flag that the loop reads
between items: the item in progress finishes and is recorded, then the command stops with
:class:`Interrupted` (exit 128 + signal number: 130 for Ctrl-C). A second signal ends the
process at once with the same code; every output is written atomically, so nothing is left
half-written (the temporaries are removed by the next run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The user stopped a batch; ``remaining`` items were not started."""

    def __init__(self, signum: int, remaining: int = 0) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {remaining} item(s) not started")
        self.signum = signum
        self.remaining = remaining

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@dataclass
class StopFlag:
    signum: int = 0


@contextlib.contextmanager
def stop_on_signal() -> Iterator[StopFlag]:
    """Within the block, SIGINT/SIGTERM set ``flag.signum`` instead of raising; restored after."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # only the main thread may set handlers; callers there keep the defaults
        return

    def handler(signum: int, _frame: object) -> None:
        if flag.signum:
            os._exit(128 + signum)
        flag.signum = signum
        # os.write, not the console: a handler may run while the console holds its lock
        os.write(2, b"\nstopping after the current scan (send the signal again to stop now)\n")

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
