"""One label (or mask) file's particle table, as ``nanogan measure`` makes it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .table import Measurements, measure_particles


def measure_file(path: str | os.PathLike, *, image_path: str | os.PathLike | None = None,
                 pixel_size_nm: float | None = None, min_area: int = 1) -> Measurements:
    """The particle table of one label (or mask) file, as ``nanogan measure`` makes it.

    With ``image_path``, the source image gives intensities, the info bar (particles
    reaching it flagged) and the pixel size; ``pixel_size_nm`` overrides both the image's
    and the label TIFF's own. Without ``image_path``, the image of the file's name, where there is
    one of its shape (``images/<stem>.tif`` beside ``masks/<stem>_m.tif``, as napari's reader pairs
    them: :func:`~napari_nanogan.io.masks.its_image`), gives the intensities, and the info bar and
    pixel size where the label file records none. A label TIFF of ``nanogan segment`` (or napari's
    writer) records both, and they come first: the pixel size it was segmented with, given or from a
    scale bar, even beside ``image_path``; the info bar it excluded, or none.
    The confidence table beside the labels (``<stem>.csv``) is kept. Its ``image`` column names the
    labels file, ``source_image`` the image measured with it, if any. Particles under ``min_area`` px are left out. Raises ``ValueError`` or ``OSError`` for a
    file that cannot be measured (a grey image given as labels among them).
    """
    from ..io.images import is_labels_tiff, labels_info_bar_rows, labels_pixel_size_nm, read_image, read_label_table
    from ..io.infobar import bottom_bar_start, detect_info_bar, top_bar_end
    from ..io.masks import instance_labels, its_image, looks_inverted, mask_values, pixel_size_of_its_image, read_mask

    path = Path(path)
    labels = mask_values(read_mask(path))  # label images keep the numbers their table and the user name them by
    confidence = read_label_table(path, int(labels.max(initial=0)))
    if len(np.unique(labels)) <= 2 and confidence is None:  # a binary mask: its parts are particles
        labels = instance_labels(labels)
        if looks_inverted(labels):
            import warnings

            warnings.warn(f"{path.name}: one particle covers most of the image and reaches all four edges: is the "
                          "mask inverted (particles 0, background 1 or 255)?", stacklevel=2)
    image, bar_start, bar_end, pixel = None, None, None, pixel_size_nm
    given = image_path is not None
    if given:
        image, meta = read_image(image_path)
        if image.shape != labels.shape:
            raise ValueError(f"image {image_path} has shape {image.shape}, labels {labels.shape}")
    else:  # a mask whose image lies beside it by name, as napari's reader pairs them
        image_path, image, meta = _read_if_shaped(its_image(path), labels.shape)
    if image is not None:
        bar_start, bar_end = bottom_bar_start(bar := detect_info_bar(image)), top_bar_end(bar)
    tiff = path.suffix.lower() in (".tif", ".tiff")
    ours = tiff and is_labels_tiff(path)  # a label TIFF of segmentation (or napari's writer) records its bar
    if not given and (ours or (tiff and labels_info_bar_rows(path) != (None, None))):
        bar_start, bar_end = labels_info_bar_rows(path)  # the rows segmentation excluded (none: none), not detected
    own = labels_pixel_size_nm(path) if tiff else None
    of_image = meta["pixel_size_nm"] if image is not None else None
    # the pixel size the labels were made with first (ours record it), then the image's, then any image of its name
    if not pixel and ours and own and of_image and abs(own - of_image) > 0.01 * of_image:
        import warnings

        warnings.warn(f"{path.name} was segmented at {own:g} nm a pixel, its image {Path(image_path).name} records "
                      f"{of_image:g} nm: {own:g} nm is used (give --pixel-size to choose)", stacklevel=2)
    pixel = pixel or (own if ours or not given else None) or of_image or own
    if pixel is None and not given:
        pixel = pixel_size_of_its_image(path).get("pixel_size_nm")
    table = measure_particles(labels, image=image, pixel_size_nm=pixel, info_bar_start=bar_start, name=path.name,
                              confidence=confidence, min_area=min_area, info_bar_end=bar_end)
    if image_path is not None:  # the "image" column names the labels file; this one the image measured with it
        table.columns["source_image"] = np.array([Path(image_path).name] * len(table), dtype=object)
    return table


def _read_if_shaped(path, shape) -> tuple:
    """``(path, image, meta)`` where ``path`` is an image of ``shape`` that can be read, else Nones (the mask is
    then measured without it)."""
    from ..io.images import read_image

    try:
        image, meta = read_image(path) if path is not None else (None, None)
    except (ValueError, OSError):
        return None, None, None
    return (path, image, meta) if image is not None and image.shape == tuple(shape) else (None, None, None)
