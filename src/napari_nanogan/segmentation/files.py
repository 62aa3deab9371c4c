"""One image file to one labels file: what ``nanogan segment`` does per input, in one process or on a cluster.

Both run :func:`segment_file`, so a file gives the same labels whichever runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

from ..config import TILE


def labels_path(out_dir: str | Path, image_path: str | Path) -> Path:
    """Where the labels of ``image_path`` go: ``<out>/<stem>_labels.tif`` (its table beside it)."""
    return Path(out_dir) / f"{Path(image_path).stem}_labels.tif"


def overlay_path(out_dir: str | Path, image_path: str | Path) -> Path:
    """Where ``--overlay`` puts the picture of the labels on ``image_path``: ``<out>/<stem>_overlay.png``."""
    return Path(out_dir) / f"{Path(image_path).stem}_overlay.png"


def segment_file(path: str | Path, out_dir: str | Path, segmenter, *, diameter: float | Literal["auto"] | None = None,
                 diameter_nm: float | None = None, pixel_size_nm: float | None = None,
                 scale_bar_nm: float | None = None, tile: int = TILE,
                 overlay: bool = False, progress: Callable[[int, int], None] | None = None,
                 small_pass: bool = True, scale_check: bool = True,
                 polarity_check: bool = True) -> tuple[Path, str]:
    """Read an image, segment it, write ``<out>/<stem>_labels.tif`` (and the labels' table); return it and a line.

    ``overlay``: also ``<out>/<stem>_overlay.png``, each particle outlined on the image, with a
    caption (count, model, info bar) and a scale bar where the pixel size is known (written
    after the labels, so its presence means they are complete).

    ``small_pass``, ``scale_check``, ``polarity_check``: as :func:`~napari_nanogan.segmentation.segment_steps`
    takes them.
    ``pixel_size_nm``: the pixel size (nm) to use instead of the file's own (figure crops
    and PNGs give none); it goes into the labels TIFF. ``scale_bar_nm``: instead, the length of
    the scale bar burnt into the image, whose length in pixels gives the pixel size
    (:func:`~napari_nanogan.io.scalebar.pixel_size_from_scale_bar`; an image without one is an
    error). ``diameter_nm`` (instead of ``diameter``) is converted with the pixel size; a file without one is an error. The
    labels are written atomically, table first, so a labels TIFF on disk means both are
    complete. Raises
    :class:`~napari_nanogan.io.ImageReadError`, ``ValueError`` or ``OSError`` for
    this file.
    """
    from ..io.atomic import remove_stale_temporaries
    from ..io.images import read_image, write_labels
    from ..io.infobar import bottom_bar_start, top_bar_end
    from .pipeline import segment

    path = Path(path)
    if pixel_size_nm is not None and scale_bar_nm is not None:
        raise ValueError("give the pixel size or the scale bar's length, not both")
    target = labels_path(out_dir, path)
    if not is_earlier_result(target):
        raise FileExistsError(f"{target} is there and was not written by nanogan segment (an annotation?): it is "
                              "not replaced; choose another --out, or move it away")
    image, meta = read_image(path)
    pixel, source = pixel_size_nm or meta["pixel_size_nm"], " (given)" if pixel_size_nm else ""
    if scale_bar_nm is not None:
        from ..io.scalebar import pixel_size_from_scale_bar

        try:
            pixel, bar = pixel_size_from_scale_bar(image, scale_bar_nm)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        source = (f" (a scale bar of {bar.length_px:g} px = {scale_bar_nm:g} nm, rows {bar.top}-{bar.bottom - 1}, "
                  f"columns {bar.start:g}-{bar.stop:g})")
    if source and meta["pixel_size_nm"] and abs(pixel - meta["pixel_size_nm"]) > 0.01 * meta["pixel_size_nm"]:
        source += f", not the file's {meta['pixel_size_nm']:g} nm"
    if diameter_nm is not None:
        if not pixel:
            raise ValueError(f"{path}: --diameter-nm needs the pixel size, and this file does not give it; "
                             "give --pixel-size, or use --diameter in pixels")
        diameter = diameter_nm / pixel
    result = segment(image, segmenter, tile=tile, diameter=diameter, progress=progress, small_pass=small_pass,
                     scale_check=scale_check, polarity_check=polarity_check)
    for stale in (target, target.with_suffix(".csv")):  # what a killed earlier run left
        remove_stale_temporaries(stale)
    target = write_labels(target, result.labels, pixel_size_nm=pixel, confidence=result.confidence,
                          info_bar_start=bottom_bar_start(result.info_bar), info_bar_end=top_bar_end(result.info_bar))
    unit = f", pixel size {pixel:.4g} nm{source}" if pixel else \
        ", pixel size unknown (sizes in px; --pixel-size gives it)"
    which = f" ({meta['image_read']})" if meta.get("image_read") else ""
    line = f"{path}{which}: {result.describe(requested=segmenter.name, pixel_size=pixel)}{unit} -> {target}"
    if overlay:
        from PIL import Image

        from ..io.atomic import atomic_path
        from ..overlay import captioned, overlay_caption
        from ..overlay import overlay as draw

        picture = overlay_path(out_dir, path)
        remove_stale_temporaries(picture)
        caption = overlay_caption(result.count, result.model, info_bar=result.info_bar is not None)
        with atomic_path(picture) as tmp:
            drawn = draw(image, result.labels, info_bar=result.info_bar)
            Image.fromarray(captioned(drawn, caption, pixel_size_nm=pixel)).save(tmp, format="PNG")
        line += f", {picture.name}"
    return target, line


def is_earlier_result(target: str | Path) -> bool:
    """Whether ``target`` may be written: nothing is there, or labels that ``nanogan segment`` wrote (marked
    as such, :func:`~napari_nanogan.io.images.is_labels_tiff`, or with their confidence table beside them, as
    it wrote them before the mark), never another file of that name, such as a hand-made annotation."""
    from ..io.images import is_label_table, is_labels_tiff

    target = Path(target)
    if not target.exists():
        return True
    return target.is_file() and (is_labels_tiff(target) or is_label_table(target.with_suffix(".csv")))


def failure_line(path: str | Path, exc: BaseException) -> str:
    """``nanogan segment``'s one-line reason for a file that failed (the path always in it)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if str(path) not in reason:
        reason = f"{path}: {reason}"
    return f"error: {reason}"
