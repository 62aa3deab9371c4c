"""Dask clusters: a running scheduler, a local one, SLURM/PBS through dask-jobqueue; models loaded once per worker.

Any ``dask.distributed`` cluster runs the work: ``dask scheduler`` plus ``dask worker``
processes on any machines that see the same files (a shared file system), a
:class:`~distributed.LocalCluster`, or a dask-jobqueue cluster on a batch system
(:func:`jobqueue_cluster`). Each worker loads a model when it joins
(:class:`ModelPlugin`) and keeps it for every task it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

log = logging.getLogger(__name__)


class ModelPlugin(WorkerPlugin):
    """Loads a model on a worker once, when the worker joins (or at its first task), for all its tasks.

    Parameters
    ----------
    kind : "segmenter" or "generator"
    model : str
        A model name or checkpoint path, resolved on the worker (a path must be on a
        file system the workers see).
    torch_threads : int, optional
        Threads torch may use on the worker (a local cluster gives each worker its share
        of the cores); None leaves torch's default (set ``OMP_NUM_THREADS`` for
        ``dask worker``).
    """

    def __init__(self, kind: str, model: str, torch_threads: int | None = None):
        if kind not in ("segmenter", "generator"):
            raise ValueError(f"kind must be 'segmenter' or 'generator', not {kind!r}")
        self.kind, self.model, self.torch_threads = kind, str(model), torch_threads
        self.name = plugin_name(kind, model)
        self.loads = 0
        self._loaded = None
        self._lock = threading.Lock()

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_loaded", "_lock")} | {"_loaded": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def setup(self, worker=None):
        if self.torch_threads:
            import torch

            torch.set_num_threads(int(self.torch_threads))
        try:
            self.get()
        except Exception as exc:  # reported by the first task that needs the model
            log.warning("%s: %s not loaded at start (%s)", self.name, self.model, exc)

    def get(self):
        """The loaded model (loaded now, the first time)."""
        with self._lock:
            if self._loaded is None:
                if self.kind == "segmenter":
                    from ..segmentation import load_segmenter

                    self._loaded = load_segmenter(self.model)
                else:
                    from ..synthesis import load_generator

                    self._loaded = load_generator(self.model)
                self.loads += 1
            return self._loaded


def plugin_name(kind: str, model: str) -> str:
    return f"napari-nanogan-{kind}-{model}"


def worker_model(name: str):
    """In a task: the model the worker's :class:`ModelPlugin` ``name`` holds."""
    return get_worker().plugins[name].get()


def register(client: Client, plugin: ModelPlugin) -> None:
    """Load ``plugin``'s model on every worker of ``client`` (and on workers that join later)."""
    client.register_plugin(plugin, name=plugin.name)


def local_threads(workers: int) -> int:
    """Torch threads per worker of a local cluster of ``workers``: the cores shared out, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, *, processes: bool = True):
    """A Dask client: connected to ``scheduler`` (``tcp://host:port``), or to a local cluster of ``workers``.

    A local cluster has one thread per worker process (torch gets the cores shared out,
    :func:`local_threads`) and no dashboard; it ends with the context.
    """
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    if not workers or workers < 1:
        raise ValueError("give a scheduler address or a number of workers (1 or more)")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


def jobqueue_cluster(system: str, *, cores: int, memory: str, processes: int = 1, walltime: str = "01:00:00",
                     queue: str | None = None, account: str | None = None, python: str | None = None,
                     job_directives: list[str] | None = None, **kwargs):
    """A dask-jobqueue cluster on a batch system (``"slurm"`` or ``"pbs"``); no job is submitted until it scales.

    Each job runs ``processes`` Dask workers sharing ``cores`` cores and ``memory``
    (``"16GB"``; a worker block-segmenting an image needs about 1.5 GB with the default
    block). Then ``cluster.scale(jobs=N)`` submits N jobs, and ``Client(cluster)`` or
    ``nanogan segment ... --scheduler cluster.scheduler_address`` uses them. Each job
    starts its workers with ``OMP_NUM_THREADS`` set to its cores per worker, so torch
    does not oversubscribe the node. Other keyword arguments go to the dask-jobqueue
    class (``SLURMCluster``, ``PBSCluster``).
    """
    from . import require

    require("a SLURM or PBS cluster", "dask_jobqueue")
    import dask_jobqueue

    classes = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}
    if system not in classes:
        raise ValueError(f"system must be one of {', '.join(classes)}, not {system!r}")
    threads = max(1, cores // max(processes, 1))
    prologue = [f"export OMP_NUM_THREADS={threads}", f"export MKL_NUM_THREADS={threads}"]
    options = dict(cores=cores, memory=memory, processes=processes, walltime=walltime, queue=queue, account=account,
                   job_script_prologue=prologue, job_extra_directives=list(job_directives or []), **kwargs)
    if python:
        options["python"] = python
    return classes[system](**options)
