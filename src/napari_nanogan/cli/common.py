"""What the commands share: progress bars on stderr, training drivers, one-line errors."""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def command_line() -> str:
    """How this process was started, for provenance (``nanogan train ...``)."""
    return "nanogan " + " ".join(sys.argv[1:])


def first_line(exc: BaseException) -> str:
    """An exception as one line for a user: its message's first line, or its type."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def drive_training(make_loop, total: int, desc: str, report, *, quiet: bool = False) -> int:
    """Run a training loop (a generator of TrainProgress) with a progress bar on stderr.

    ``make_loop(should_stop)`` builds the loop; SIGTERM asks it to stop after the
    current step (it writes last.pt); ``report(record)`` prints what a step has to say.
    ``quiet``: no bar and no reports (the other processes of a data-parallel run).
    """
    import signal

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    if quiet:
        try:
            for _ in make_loop(lambda: stop["now"]):
                pass
        except KeyboardInterrupt:
            return 130
        return 0
    bar = progress_bar(total, desc)
    try:
        for rec in make_loop(lambda: stop["now"]):
            bar.n = rec.step
            if "total" in rec.losses:  # the stop record trains nothing: keep the last step's loss shown
                bar.set_postfix(loss=f"{rec.losses['total']:.3f}", s_step=f"{rec.seconds_per_step:.2f}")
            elif rec.losses:  # train-gan --critic-warmup: only the critics learn, their loss is what moves
                bar.set_postfix(critics=f"{sum(rec.losses.values()) / len(rec.losses):.3f}",
                                s_step=f"{rec.seconds_per_step:.2f}")
            report(rec)
            if rec.stopped:
                print(f"\nstopped at step {rec.step}; checkpoint {rec.checkpoint}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; resume with the same command (last.pt is kept)", file=sys.stderr)
        return 130
    finally:
        bar.close()
    return 0


def has_extra(command: str) -> bool:
    from ..distributed import ExtraMissing, require

    try:
        require("--scheduler and --workers")
    except ExtraMissing as exc:
        print(f"nanogan {command}: {exc}", file=sys.stderr)
        return False
    return True


def add_cluster_options(p, *, overwrite: bool = True, threads: bool = True) -> None:
    """``--scheduler`` / ``--workers`` (and ``--overwrite``) of the commands that run on a Dask cluster."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a running dask.distributed scheduler (tcp://host:port); inputs and --out must be "
                            "on a file system its workers see. Needs the distributed extra")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="run on a local Dask cluster of N worker processes (the cores shared out among them)")
    if threads:
        p.add_argument("--threads", type=int, default=None, metavar="N",
                       help="torch threads of this process, or of each worker (default: all cores here; on a local "
                            "cluster the cores shared out; a `dask worker` its own, 1 per worker thread). Results are "
                            "byte-identical between runs with the same number: float sums follow the thread count")
    if overwrite:
        p.add_argument("--overwrite", action="store_true",
                       help="with --scheduler/--workers: redo outputs that are already complete (default: a rerun "
                            "skips them and finishes the rest)")


def apply_threads(args) -> None:
    """``--threads`` for a run in this process."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(int(args.threads))
