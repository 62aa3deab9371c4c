"""Progress records yielded by training loops."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainProgress:
    """One step's report.

    Attributes
    ----------
    step, total : int
        Steps done and planned.
    losses : dict
        Loss terms of this step (floats).
    elapsed : float
        Seconds of training so far in this run (excluding earlier runs resumed from).
    seconds_per_step : float
        Running mean over this run's steps.
    validation : dict or None
        Validation scores when this step validated.
    checkpoint : str or None
        Path written at this step, if any.
    stopped : bool
        True on the final record of a run ended by ``should_stop``.
    """

    step: int
    total: int
    losses: dict = field(default_factory=dict)
    elapsed: float = 0.0
    seconds_per_step: float = 0.0
    validation: dict | None = None
    checkpoint: str | None = None
    stopped: bool = False

    @property
    def eta(self) -> float:
        return max(self.total - self.step, 0) * self.seconds_per_step
