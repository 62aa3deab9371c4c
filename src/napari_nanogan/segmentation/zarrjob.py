"""Block-wise segmentation into an OME-Zarr labels store: resumable, never left half-written.

The steps of :mod:`~napari_nanogan.segmentation.blockwise` around a store on disk:

1. :func:`prepare_output` makes ``.<name>.partial`` beside the target (or reopens it,
   when a run with the same plan was interrupted): an OME-Zarr label image plus an
   array ``local`` for each block's own numbering.
2. :func:`run_block` segments one block into ``local`` and keeps its
   :class:`~napari_nanogan.segmentation.blockwise.BlockResult` beside it; a block done
   before is read back, not redone.
3. :func:`~napari_nanogan.segmentation.stitching.stitch` joins the blocks' parts;
   :func:`run_relabel` writes each block's final labels (every pyramid level) from
   ``local``, so a repeated relabelling gives the same.
4. :func:`finish_output` drops the working arrays and renames the store into place.

:func:`segment_zarr_steps` runs them in this process (the CLI without a cluster, the
napari panel); :mod:`napari_nanogan.distributed` runs steps 2 and 3 on Dask workers.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

import numpy as np

from ..io.atomic import atomic_path
from ..io.omezarr import OmeZarrWriter, create_array, create_ome_zarr, need_zarr, partial_path, replace_folder
from .blockwise import Block, BlockResult, BlockwisePlan, network_of, plan_blockwise, relabel, segment_block, stitch
from .wording import ENLARGEMENT_REJECTED, INVERTED, plural, scale_checked

_BLOCKS = ".nanogan-blocks"  # the block results of a partial store
_LOCAL = "local"  # each block's own numbering, before stitching


@dataclass(frozen=True)
class ZarrResult:
    """Where the labels went and what was found (:func:`segment_zarr_steps`)."""

    path: Path
    count: int
    plan: BlockwisePlan
    skipped: bool = False

    @property
    def model(self) -> str:
        return self.plan.model

    @property
    def diameter_px(self) -> float | None:
        return self.plan.diameter_px

    def describe(self, *, requested: str | None = None, pixel_size: float | None = None) -> str:
        """One line: "5120 particles, estimated particle diameter 31 px (228 nm), 64 blocks of 2048 px (margin 128 px)".

        ``pixel_size`` (nm): the estimated diameter in nm too."""
        if self.skipped:
            return f"already complete ({plural(self.count, 'particle')}); not redone"
        parts = [plural(self.count, "particle")]
        if self.plan.diameter_estimated and self.plan.diameter_px is not None:
            nm = self.plan.diameter_px * pixel_size if pixel_size else None
            length = "" if nm is None else (f" ({nm / 1000:.3g} µm)" if nm >= 1000 else f" ({nm:.3g} nm)")
            parts.append(f"estimated particle diameter {self.plan.diameter_px:.0f} px{length}")
            if self.plan.factor > 1.0:
                parts.append(f"image enlarged {self.plan.factor:.2g} times for its small particles")
            elif self.plan.enlargement_rejected:
                parts.append(ENLARGEMENT_REJECTED)
            elif self.plan.estimate_scale is not None:
                parts.append(scale_checked(self.plan.factor, self.plan.estimate_scale))
            elif self.plan.factor < 1.0:
                parts.append(f"image made {1 / self.plan.factor:.2g} times smaller")
        if self.plan.inverted:
            parts.append(INVERTED)
        if self.plan.fine_factor is not None:
            parts.append("a finer pass for small particles beside large ones")
        rows, cols = self.plan.grid
        parts.append(f"{plural(rows * cols, 'block')} of {self.plan.block} px (margin {self.plan.margin} px)")
        if requested is not None and self.plan.model != requested:
            parts.append(f"model {self.plan.model}")
        return ", ".join(parts)


def labels_target(out_dir: str | Path, stem: str) -> Path:
    """Where the labels of a zarr image called ``stem`` go: ``<out>/<stem>_labels.zarr``."""
    return Path(out_dir) / f"{stem}_labels.zarr"


def completed(path: str | Path) -> int | None:
    """The particle count of a finished labels store at ``path``, or None (absent or not written by a whole run)."""
    path = Path(path)
    if not path.is_dir():
        return None
    try:
        attrs = dict(need_zarr().open_group(str(path), mode="r").attrs)
    except Exception:
        return None
    info = attrs.get("nanogan") or {}
    return int(info["particles"]) if info.get("complete") else None


def finished(out_path: str | Path, source) -> ZarrResult | None:
    """The result of a run that finished ``out_path`` before (skipped, not redone), or None."""
    count = completed(out_path)
    if count is None:
        return None
    info = dict(need_zarr().open_group(str(out_path), mode="r").attrs)["nanogan"]
    return ZarrResult(Path(out_path), count, _stored_plan(source, info), skipped=True)


def prepare_output(out_path: str | Path, plan: BlockwisePlan, *, pixel_size_nm: float | None = None,
                   source: str | None = None) -> Path:
    """The partial store for ``plan`` (created, or reused from an interrupted run with the same plan)."""
    partial = partial_path(out_path)
    fingerprint = plan.fingerprint()
    if partial.is_dir():
        try:
            info = dict(need_zarr().open_group(str(partial), mode="r").attrs).get("nanogan") or {}
        except Exception:
            info = {}
        if info.get("plan") == fingerprint:
            return partial  # resume: its finished blocks are kept
    writer = create_ome_zarr(partial, plan.shape, np.uint32, chunk=plan.block, pixel_size_nm=pixel_size_nm,
                             labels=True, name=Path(out_path).stem, overwrite=True)
    create_array(writer.group, _LOCAL, plan.shape, (plan.block, plan.block), np.uint32)
    writer.attrs["nanogan"] = {"plan": fingerprint, "complete": False, "model": plan.model, "block": plan.block,
                               "margin": plan.margin, "diameter_px": plan.diameter_px, "source": source,
                               "mirror": plan.mirror}
    (partial / _BLOCKS).mkdir(exist_ok=True)
    return partial


def run_block(source, block: Block, network, plan: BlockwisePlan, partial: str | Path) -> BlockResult:
    """Segment one block into the partial store (or read back its result from an earlier run)."""
    done = Path(partial) / _BLOCKS / f"{block.name}.npz"
    if done.is_file():
        with np.load(done) as data:
            return BlockResult.from_arrays(data)
    local, result = segment_block(source, block, network, plan)
    _local_array(partial)[block.core] = local
    with atomic_path(done) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **result.to_arrays())
    return result


def run_relabel(partial: str | Path, block: Block, offset: int, lut: np.ndarray) -> None:
    """Write one block's final labels, every pyramid level, from its own numbering."""
    local = np.asarray(_local_array(partial)[block.core])
    OmeZarrWriter(partial).write(block.core, relabel(local, offset, lut))


def finish_output(partial: str | Path, out_path: str | Path, count: int) -> Path:
    """Mark the store complete, drop the working arrays, move it into place."""
    partial = Path(partial)
    writer = OmeZarrWriter(partial)
    info = dict(writer.attrs.get("nanogan") or {})
    writer.attrs["nanogan"] = info | {"complete": True, "particles": int(count)}
    shutil.rmtree(partial / _LOCAL, ignore_errors=True)
    shutil.rmtree(partial / _BLOCKS, ignore_errors=True)
    replace_folder(partial, out_path)
    return Path(out_path)


def _local_array(partial):
    return need_zarr().open_group(str(partial), mode="r+")[_LOCAL]


def segment_zarr_steps(source, segmenter, out_path: str | Path, *, plan: BlockwisePlan | None = None,
                       pixel_size_nm: float | None = None, overwrite: bool = False, **options
                       ) -> Generator[tuple[int, int], None, ZarrResult]:
    """Segment a (large, lazy) 2D image block by block into an OME-Zarr labels store at ``out_path``.

    A generator: yields ``(blocks_done, blocks_total)`` (the last step is stitching)
    and returns a :class:`ZarrResult`. ``options`` are
    :func:`~napari_nanogan.segmentation.blockwise.plan_blockwise`'s. A store already
    complete at ``out_path`` is kept (``overwrite=False``) and reported as skipped; an
    interrupted run with the same plan resumes from its finished blocks.
    """
    out_path = Path(out_path)
    if not overwrite and (done := finished(out_path, source)) is not None:
        return done
    plan = plan or plan_blockwise(source, segmenter, **options)
    network = network_of(segmenter, plan)
    partial = prepare_output(out_path, plan, pixel_size_nm=pixel_size_nm, source=str(getattr(source, "path", "")))
    blocks = plan.blocks()
    total = len(blocks) + 1
    results = []
    for k, block in enumerate(blocks, 1):
        results.append(run_block(source, block, network, plan, partial))
        yield k, total
    offsets, lut = stitch(results, plan.grid)
    for block in blocks:
        run_relabel(partial, block, offsets[block.index], lut)
    count = int(lut.max()) if lut.size else 0
    finish_output(partial, out_path, count)
    yield total, total
    return ZarrResult(out_path, count, plan)


def _stored_plan(source, info: dict) -> BlockwisePlan:
    """A stand-in plan for a store finished earlier (what its metadata says), for describing it."""
    from ..config import PostprocessConfig

    shape = tuple(int(n) for n in source.shape)
    return BlockwisePlan(shape=shape, network="self", model=str(info.get("model")), intensity=(0.0, 1.0),
                         statistics=[], factor=1.0, diameter_px=info.get("diameter_px"), diameter_estimated=False,
                         postprocess=PostprocessConfig(), block=int(info.get("block", 2048)),
                         margin=int(info.get("margin", 0)), mirror=info.get("mirror"))
