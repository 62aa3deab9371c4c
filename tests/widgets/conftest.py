import pytest


@pytest.fixture
def wait_done(qtbot):
    """Wait until a widget has handled its worker's end (its ``_on_finished`` re-enables Run).

    Waiting on ``worker.finished`` itself races: the worker thread may emit it before the
    test connects to it (a fast job, or one cancelled at a yield), and the test then waits
    for a signal already gone. The widget connects before it starts the worker, so its
    own handler never misses the end.
    """

    def wait(widget, timeout: int = 60_000):
        assert widget.worker is not None, "no worker was started"
        qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=timeout)

    return wait
