"""Progress of the drivers' long stages (validation and rollout episodes, SFT steps, checkpoints).

Workers report what they finish to a `ProgressCounter` (a small Ray actor) while the driver waits on
their calls; the driver shows it as a tqdm bar on an interactive console, or, on non-interactive
output (a log file, a scheduler), as one line when the stage ends, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

POLL_S = 1.0


class ProgressCounter:
    """Items finished, and how many of them succeeded, per kind ("episodes", "steps"); a Ray actor."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, kind: str, items: int = 1, successes: int = 0) -> None:
        count = self.counts.setdefault(kind, [0, 0])
        count[0] += items
        count[1] += successes

    def reset(self, kind: str) -> None:
        self.counts[kind] = [0, 0]

    def read(self, kind: str) -> tuple[int, int]:
        done, successes = self.counts.get(kind, [0, 0])
        return done, successes


def start_counter() -> Any:
    """A `ProgressCounter` actor that takes no CPU from the workers' bundles."""
    import ray

    return ray.remote(ProgressCounter).options(num_cpus=0).remote()


def report(counter: Any, kind: str, items: int = 1, successes: int = 0) -> None:
    """Tell the driver's counter (if any) about finished items; never waits."""
    if counter is not None:
        counter.add.remote(kind, items, successes)


class Stage:
    """One stage's display: a bar when `interactive`, else a single line at `close`."""

    def __init__(
        self, desc: str, total: int | None, unit: str, enabled: bool = True, initial: int = 0
    ) -> None:
        from tqdm import tqdm

        self.desc, self.total, self.unit = desc, total, unit
        self.enabled = enabled
        self.interactive = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()
        # Items done before this stage started (a resumed run); counts reported later add to it.
        self.initial = initial
        self.done = initial
        self.bar = (
            tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False)
            if self.interactive
            else None
        )

    def update(self, done: int, successes: int | None = None) -> None:
        """`done` items of this stage finished (counted from `initial`)."""
        done += self.initial
        if self.bar is not None and done != self.done:
            self.bar.update(done - self.done)
            if successes is not None and done > self.initial:
                self.bar.set_postfix(success=f"{successes / (done - self.initial):.2f}", refresh=False)
        self.done = done

    def close(self, summary: str = "") -> None:
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            seconds = time.perf_counter() - self.start
            if self.total:
                count = f"{self.done}/{self.total} {self.unit} "
            else:
                count = f"{self.done} {self.unit} " if self.done else ""
            line = f"[{self.desc}] {count}in {seconds:.1f} s"
            print(line + (f"; {summary}" if summary else ""), file=sys.stderr, flush=True)


def wait_with_progress(refs: list[Any], counter: Any, kind: str, stage: Stage) -> None:
    """Wait for `refs` (results stay in the object store), updating `stage` from `counter`."""
    import ray

    pending = list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        if counter is not None:
            stage.update(*ray.get(counter.read.remote(kind)))
