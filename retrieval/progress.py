"""Progress lines for the steps that take more than a few seconds: the model build, index encoding,
demo traffic, server start-up (issue 17 item 6: a newcomer waited minutes with no sign of life).

The convention: one line per stage, "bhxh: <stage>: <done>/<total> (<percent>%)", on stderr, at most
one every `EVERY` seconds plus the last, so stdout stays the command's result. Shown when stderr is
a terminal (someone is waiting), silent otherwise (logs, pipes, tests) unless the command line says
`--progress always` (or `never`). Library code reports; only the composition root (bhxh/cli.py)
decides whether anything is printed (`configure`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, TypeVar

Mode = Literal["auto", "always", "never"]
MODES: tuple[Mode, ...] = ("auto", "always", "never")
EVERY = 2.0  # seconds between two lines of one stage
HEARTBEAT = 10.0  # seconds between two "still working" lines of a stage that cannot count its work
CHUNK = 256  # texts encoded between two progress checks (a few seconds on a 2-core CPU)
PREFIX = "bhxh: "

_mode: Mode = "auto"
_lock = threading.Lock()
T = TypeVar("T")


def configure(mode: Mode) -> None:
    global _mode
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {MODES}")
    _mode = mode


def active() -> bool:
    if _mode == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return _mode == "always"


def say(message: str) -> None:
    """One line on stderr (when progress is shown)."""
    if active():
        with _lock:
            print(PREFIX + message, file=sys.stderr, flush=True)


def percent(done: int, total: int) -> str:
    return f"{done:,}/{total:,} ({100 * done // total if total else 100}%)"


class Counter:
    """Counts one stage's work; a line every EVERY seconds and one at the end (`finish`)."""

    def __init__(self, stage: str, total: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stage, self.total, self.done, self.clock = stage, total, 0, clock
        self.started = self.last = clock()

    def add(self, count: int, note: str = "") -> None:
        self.done = min(self.total, self.done + count)
        now = self.clock()
        if now - self.last >= EVERY and self.done < self.total:
            self.last = now
            say(f"{self.stage}: {percent(self.done, self.total)}{note}")

    def finish(self, note: str = "") -> None:
        say(f"{self.stage}: {percent(self.total, self.total)}{note} in {self.clock() - self.started:.1f} s")


def chunked(encode: Callable[[list[str]], T], stage: str, join: Callable[[list[T]], T]) -> Callable[[Sequence[str]], T]:
    """`encode` over a long list CHUNK texts at a time, counting each chunk (results joined by `join`).
    A list of one chunk or less is encoded in one call and reported only when it took a while."""

    def run(texts: Sequence[str]) -> T:
        texts, chunk = list(texts), CHUNK
        counter = Counter(stage, len(texts))
        parts = []
        for start in range(0, len(texts), chunk) if texts else [0]:
            parts.append(encode(texts[start: start + chunk]))
            counter.add(min(chunk, len(texts) - start))
        if len(texts) > chunk or counter.clock() - counter.started >= EVERY:
            counter.finish()
        return parts[0] if len(parts) == 1 else join(parts)

    return run


def throttled(stage: str) -> Callable[[str], None]:
    """A `progress(line)` callback (demo traffic's) that prints at most one line every EVERY seconds."""
    last = [-EVERY]

    def report(line: str) -> None:
        now = time.monotonic()
        if now - last[0] >= EVERY:
            last[0] = now
            say(f"{stage}: {line}")

    return report


@contextlib.contextmanager
def stage(name: str, about: str = "", *, heartbeat: float | None = None) -> Iterator[None]:
    """A step that cannot count its work (importing torch, loading a model): a line when it starts (with
    `about` it, once), one every HEARTBEAT seconds while it runs (lines of the steps inside it come in
    between), one at the end."""
    every = HEARTBEAT if heartbeat is None else heartbeat
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            say(f"{name}: still working ({time.monotonic() - started:.0f} s)")

    say(f"{name}: {about} …" if about else f"{name} …")
    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    say(f"{name}: done in {time.monotonic() - started:.1f} s")
