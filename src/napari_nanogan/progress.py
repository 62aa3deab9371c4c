"""Long work as generators: a step generator yields progress and returns its result.

``result = drive(steps, progress=..., should_stop=...)`` runs one to the end; a caller
that wants the progress itself (a napari worker, a tqdm bar) iterates it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, TypeVar

Result = TypeVar("Result")


@dataclass(frozen=True)
class Progress:
    """A step of long work: ``done`` of ``total``, and what is being done (unpacks as ``done, total``)."""

    done: int
    total: int
    stage: str = ""

    def __iter__(self):
        return iter((self.done, self.total))


def staged(steps: Generator[tuple[int, int], None, Result], stage: str) -> Generator[Progress, None, Result]:
    """Re-yield a step generator's ``(done, total)`` records as :class:`Progress` of ``stage``; returns its value."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        yield Progress(done, total, stage)


def drive(steps: Generator[tuple[int, int], None, Result], *,
          progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> Result:
    """Run a generator of ``(done, total)`` records to its return value.

    ``progress(done, total)`` is called for each record; ``should_stop()`` is polled after
    each and, when it returns True, the generator is closed and :class:`InterruptedError`
    raised.
    """
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)
        if should_stop is not None and should_stop():
            steps.close()
            raise InterruptedError("cancelled")
