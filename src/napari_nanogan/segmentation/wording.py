"""What a segmentation's status line says, for whole images and block-wise jobs alike."""

from __future__ import annotations

#: What the status line says of an enlargement undone (``SegmentationResult.enlargement_rejected``).
ENLARGEMENT_REJECTED = "enlarging the image found no particles that small: segmented at its own scale"
#: What the status line says of labels found with the grey levels inverted (``SegmentationResult.inverted``).
INVERTED = "found with the image's grey levels inverted: the network is surer of the particles so"


def plural(n: int, noun: str) -> str:
    """ "1 particle", "2 particles"."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def scale_checked(kept: float, estimate_scale: float) -> str:
    """What the status line says when the scale check kept ``kept`` rather than the estimate's ``estimate_scale``."""
    done = "image segmented at its own scale" if kept == 1.0 else f"image made {1 / kept:.2g} times smaller"
    instead = (f"enlarged {estimate_scale:.2g} times" if estimate_scale > 1.0
               else "at its own scale" if estimate_scale == 1.0 else f"{1 / estimate_scale:.2g} times smaller")
    return f"{done}, not {instead} as estimated: the network is surer of the particles there"
