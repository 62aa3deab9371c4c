"""What every training loop shares: progress records, the run's clock, resuming, the machine's name.

A training loop is a generator of :class:`TrainProgress` records that takes a
``should_stop`` callable: polled every step, and when it returns True the loop writes
its ``last.pt`` and yields a final record with ``stopped=True``. The command line drives
one with a progress bar, the napari panels with a worker thread.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path


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
    stage : str
        What the run is doing, where it has stages (fine-tuning: scoring the starting model,
        training the segmenter, the cycle GAN, tuning the post-processing, scoring).
    """

    step: int
    total: int
    losses: dict = field(default_factory=dict)
    elapsed: float = 0.0
    seconds_per_step: float = 0.0
    validation: dict | None = None
    checkpoint: str | None = None
    stopped: bool = False
    stage: str = ""

    @property
    def eta(self) -> float:
        return max(self.total - self.step, 0) * self.seconds_per_step


class Clock:
    """A run's elapsed time and pace, counted from its first step in this process (not from resumed runs)."""

    def __init__(self, total: int, start: int = 0):
        self.total, self.start, self.t0 = total, start, time.perf_counter()

    def record(self, step: int, losses: dict | None = None, validation: dict | None = None,
               checkpoint: str | None = None) -> TrainProgress:
        elapsed = time.perf_counter() - self.t0
        return TrainProgress(step, self.total, dict(losses or {}), elapsed, elapsed / max(step - self.start, 1),
                             validation, checkpoint)

    def stopped(self, step: int, checkpoint: str) -> TrainProgress:
        """The final record of a run ended by ``should_stop`` (its checkpoint already written)."""
        elapsed = time.perf_counter() - self.t0
        return TrainProgress(step, self.total, elapsed=elapsed, seconds_per_step=elapsed / max(step - self.start, 1),
                             checkpoint=checkpoint, stopped=True)


def run_folder(out_dir) -> tuple[Path, Path]:
    """The run folder (made if missing) and its resume checkpoint ``last.pt``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out, out / "last.pt"


def machine_description() -> str:
    import torch

    dev = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {dev}, torch {torch.__version__}"
