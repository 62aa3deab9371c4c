"""Beyond one process: many images and images larger than memory on a Dask cluster.

- :mod:`.cluster`: connecting to a running ``dask.distributed`` scheduler, or starting
  a local cluster, a dask-jobqueue cluster (SLURM, PBS); the worker plugin that loads a
  model once per worker.
- :mod:`.batch`: many files (segment, synthesize, export), one task per file, resumable.
- :mod:`.blocks`: one image larger than memory, block by block on the workers
  (:mod:`~napari_nanogan.segmentation.blockwise`).

Data-parallel training under ``torchrun`` is :mod:`napari_nanogan.training.ddp`.
Everything here needs the ``distributed`` extra (in the ``all`` extra too: ``pip install -e
'.[all]'`` in the source folder); without it the rest of the package works as before,
and :func:`require` says what to install.
"""

from __future__ import annotations

from ..config import INSTALL_DISTRIBUTED as EXTRA


class ExtraMissing(ImportError):
    """A feature needs the ``distributed`` extra, and it is not installed."""


def require(what: str, *modules: str) -> None:
    """Raise :class:`ExtraMissing` with one line (what needs which package, and how to install it) if one is missing."""
    import importlib.util

    for module in modules or ("distributed",):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ExtraMissing(f"{what} needs {module.split('.')[0]}, which is not installed: {EXTRA}")
