"""One image larger than memory on a Dask cluster: its blocks segmented on the workers, stitched by the client.

The steps are :mod:`~napari_nanogan.segmentation.zarrjob`'s, as tasks: a worker plans
(the image-wide decisions, with the model it holds), every block is a task writing its
core into the partial OME-Zarr store, the client stitches the blocks' seams (small
data) and relabelling tasks write the final labels with their pyramid. The image and
the store must be on a file system every worker sees; memory per worker follows the
block size, not the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from distributed import as_completed, wait

from ..segmentation.blockwise import BlockwisePlan, network_of, plan_blockwise, stitch
from ..segmentation.zarrjob import ZarrResult, finish_output, finished, prepare_output, run_block, run_relabel
from .cluster import ModelPlugin, register, worker_model


def _plan_task(source, plugin: str, options: dict) -> BlockwisePlan:
    return plan_blockwise(source, worker_model(plugin), **options)


def _block_task(source, block, plugin: str, plan: BlockwisePlan, partial: str):
    return run_block(source, block, network_of(worker_model(plugin), plan), plan, partial)


def segment_zarr(client, source, out_path: str | Path, *, model: str, pixel_size_nm: float | None = None,
                 overwrite: bool = False, torch_threads: int | None = None,
                 progress: Callable[[int, int], None] | None = None, **options) -> ZarrResult:
    """Segment a lazy 2D image (a :class:`~napari_nanogan.io.omezarr.ZarrPlane`) block by block on the cluster.

    Writes the OME-Zarr labels store ``out_path`` as
    :func:`~napari_nanogan.segmentation.zarrjob.segment_zarr_steps` does (the same
    plan gives the same labels); ``options`` are
    :func:`~napari_nanogan.segmentation.blockwise.plan_blockwise`'s. A complete store
    is kept unless ``overwrite``; an interrupted run resumes from its finished blocks.
    ``progress(done, total)`` follows the blocks.
    """
    out_path = Path(out_path).resolve()
    if not overwrite and (done := finished(out_path, source)) is not None:
        return done
    plugin = ModelPlugin("segmenter", model, torch_threads)
    register(client, plugin)
    plan = client.submit(_plan_task, source, plugin.name, options, pure=False).result()
    partial = prepare_output(out_path, plan, pixel_size_nm=pixel_size_nm, source=str(getattr(source, "path", "")))
    [shared_plan] = client.scatter([plan], broadcast=True, hash=False)
    blocks = plan.blocks()
    total = len(blocks) + 1
    futures = [client.submit(_block_task, source, block, plugin.name, shared_plan, str(partial),
                             key=f"nanogan-block-{out_path.name}-{block.name}", pure=False) for block in blocks]
    results = []
    try:
        for k, future in enumerate(as_completed(futures), 1):
            results.append(future.result())
            if progress is not None:
                progress(k, total)
    except BaseException:
        client.cancel(futures)
        raise
    offsets, lut = stitch(results, plan.grid)
    [shared_lut] = client.scatter([lut], broadcast=True, hash=False)
    relabels = [client.submit(run_relabel, str(partial), block, offsets[block.index], shared_lut, pure=False)
                for block in blocks]
    wait(relabels)
    for future in relabels:
        future.result()  # raises the first failure
    count = int(lut.max()) if lut.size else 0
    finish_output(partial, out_path, count)
    if progress is not None:
        progress(total, total)
    return ZarrResult(out_path, count, plan)
