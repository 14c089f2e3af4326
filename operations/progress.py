"""What a long wait says while it waits: one line about every ``PROGRESS_EVERY`` seconds, naming what
it waits for, its state now, and how long it has waited of how long it may
(``waiting for ollama: starting (41 s of 300 s)``).

pyinfra prints a logger line at once, on the host it concerns; a command's stdout it shows live only
at ``-vvv`` (and with the output of a command that failed), so a wait that runs on the host (the
compose health wait) prints its lines on stdout and a wait that runs here logs them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyinfra import logger
from pyinfra.context import ctx_host, host

PROGRESS_EVERY = 10  # seconds between two lines of a long wait


def waiting_line(what: str, elapsed: float | str, timeout: float) -> str:
    """``waiting for <what> (<elapsed> s of <timeout> s)``; ``elapsed`` may be a shell expression."""
    shown = elapsed if isinstance(elapsed, str) else int(elapsed)
    return f"waiting for {what} ({shown} s of {int(timeout)} s)"


def say(line: str) -> None:
    """One line on pyinfra's output, on the host being deployed when there is one."""
    prefix = host.print_prefix if ctx_host.isset() else ""
    logger.info(f"{prefix}{line}")


class Waiting:
    """Called on every round of a wait with the state it found; says so about every ``every`` seconds
    (never on the first rounds: a wait that ends quickly says nothing)."""

    def __init__(self, what: str, timeout: float, *, tell: Callable[[str], None] = say,
                 every: float = PROGRESS_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.timeout, self.tell, self.every, self.clock = what, timeout, tell, every, clock
        self.start = self.said = clock()

    def __call__(self, state: str) -> None:
        now = self.clock()
        if now - self.said >= self.every:
            self.said = now
            self.tell(waiting_line(f"{self.what}: {state}", now - self.start, self.timeout))


def poll_until_ready(probe: Callable[[], str | None], unreachable: type[Exception],
                     expired: Callable[[str], Exception], what: str, timeout: float, interval: float = 1.0,
                     waiting: Callable[[str], None] | None = None) -> None:
    """Poll an API until it is ready, the one loop of every client's ``wait_ready``: ``probe()`` returns
    ``None`` when ready, else what it found instead (``"it answers 502"``); an ``unreachable`` it raises
    counts as ``"no answer yet"``. After ``timeout`` seconds ``expired(last)`` is raised, ``last`` being
    what the last round found. ``waiting`` sees that on every round (default: a line about every 10 s)."""
    deadline = time.monotonic() + timeout
    waiting = waiting or Waiting(what, timeout)
    while True:
        try:
            last = probe()
        except unreachable:
            last = "no answer yet"
        if last is None:
            return
        if time.monotonic() >= deadline:
            raise expired(last)
        waiting(last)
        time.sleep(interval)
