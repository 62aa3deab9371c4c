"""One panel's long work in a worker thread: progress bar, status line, Run and Cancel, results as they come.

A job is a generator function run by napari's ``create_worker``: it yields progress
records and returns its result. The panel says how a record reads
(``describe(record) -> (done, total, text)``), what to do with a record that carries a
finished piece of work (``on_record``: e.g. add the image just made, so that Cancel keeps
it), and with the result. Cancel asks the worker to stop at its next yield, and records
still on their way are dropped (nothing joins the viewer after Cancel); a job that
takes a ``should_stop`` callable (training: it saves before stopping) is asked through it
instead, and ends by itself. Such a job may have done all its work when Cancel comes (after its last
step): ``stopped(result)`` says whether it stopped early, and one that did not is reported done.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from napari.utils.notifications import show_error


def error_text(exc: BaseException) -> str:
    """What went wrong, in words, for an exception whose message may be empty (MemoryError)."""
    if isinstance(exc, MemoryError):
        return str(exc) or "not enough memory for this image on this machine"
    return str(exc) or type(exc).__name__


class Job:
    """Runs one generator job at a time for a panel, and keeps its controls in step."""

    def __init__(self, panel: str, *, progress, status, run_button, cancel_button):
        self.panel = panel
        self.progress, self.status = progress, status
        self.run_button, self.cancel_button = run_button, cancel_button
        self.worker = None
        self.stop_requested = False
        self._shown = (0, 1)  # (done, total) last shown on the progress bar
        self._finished_normally = False
        self._on_cancelled = None
        self._graceful = False
        self._stopped_early = True
        self.cancel_button.changed.connect(lambda *_: self.cancel())

    @property
    def _cancelled(self) -> bool:
        """Cancel was asked of a job that stops at its next yield: what it still delivers is dropped."""
        return self.stop_requested and not self._graceful

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, function: Callable, *args, describe: Callable[[Any], tuple[int, int, str] | None],
              on_result: Callable[[Any], None] | None = None, on_record: Callable[[Any], None] | None = None,
              on_cancelled: Callable[[], str] | None = None, stopped: Callable[[Any], bool] | None = None,
              busy: str = "working ...", **kwargs) -> None:
        """Run ``function(*args, **kwargs)`` (a generator function) in a worker thread.

        ``on_cancelled()`` (optional) says what a cancelled run kept, for the status line.
        ``stopped(result)`` (optional) says whether a job that stops when asked returned before the
        end of its work; without it, a result returned after Cancel is taken as stopped early.
        """
        from napari.qt.threading import create_worker

        self.stop_requested, self._finished_normally, self._stopped_early = False, False, True
        self._shown = (0, 1)  # (done, total) last shown on the progress bar
        self._on_cancelled = on_cancelled
        self._graceful = "should_stop" in inspect.signature(function).parameters
        if self._graceful:  # it stops itself when asked, after saving what it has
            kwargs["should_stop"] = lambda: self.stop_requested
        worker = create_worker(function, *args, _start_thread=False, _connect={"errored": self._on_error}, **kwargs)

        def on_yielded(record):
            if self._cancelled:
                return  # made before Cancel but delivered after it: Cancel means nothing more arrives
            if on_record is not None:
                on_record(record)
            shown = describe(record)
            if shown is not None:
                done, total, text = shown
                if not self.stop_requested:  # after Cancel the bar stays where the work stopped
                    self._shown = (int(done), max(int(total), 1))
                    self.progress.setRange(0, self._shown[1])
                    self.progress.setValue(self._shown[0])
                if text:  # a job stopping when asked still tunes and saves: say that it was asked
                    self.status.value = f"stopping (Cancel pressed): {text}" if self.stop_requested else text

        def on_returned(result):
            if self._cancelled:
                return  # finished just as Cancel came: cancelled all the same, its result not added
            self._finished_normally = True
            self._stopped_early = stopped is None or bool(stopped(result))
            if on_result is not None:
                on_result(result)

        worker.yielded.connect(on_yielded)
        worker.returned.connect(on_returned)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = busy
        self.progress.setRange(0, 0)  # busy until the first record says how far
        worker.start()

    def refused(self, message: str) -> str:
        """A run refused before it starts: the status line says so instead of the last run's result; returns
        the notification's text ("<panel>: <message>")."""
        self.status.value = f"not started: {message}"
        return f"{self.panel}: {message}"

    def cancel(self) -> None:
        """Ask the job to stop: at its next yield, or, for a job that polls ``should_stop``, when it has saved."""
        if self.worker is None:
            return
        self.stop_requested = True
        self.cancel_button.enabled = False  # asked once; what follows (saving, scoring) is not cancelled twice
        self.status.value = "stopping after this step ..." if self._graceful else "cancelling ..."
        if not self._graceful:
            self.worker.quit()

    def _on_error(self, exc) -> None:
        self.status.value = "failed"
        show_error(f"{self.panel}: {error_text(exc)}")

    def _on_finished(self) -> None:
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.progress.setRange(0, 1)
        if self._finished_normally:
            self.progress.setValue(1)
            if self.stop_requested and not self._stopped_early:  # Cancel came after its last step
                self.status.value += " (Cancel came after the last step)"
            elif self.stop_requested:  # a job that stops when asked returns what it kept
                self.progress.setRange(0, self._shown[1])  # how far it got, not full
                self.progress.setValue(self._shown[0])
                kept = self._on_cancelled() if self._on_cancelled is not None else ""
                self.status.value = "stopped early (Cancel)" + (f": {kept}" if kept else "")
        else:
            self.progress.setValue(0)
            if self.status.value != "failed":
                kept = self._on_cancelled() if self._on_cancelled is not None else ""
                self.status.value = "cancelled" + (f": {kept}" if kept else "")
