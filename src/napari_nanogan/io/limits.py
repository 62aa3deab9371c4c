"""What every file read must pass: a readable regular file, a declared size under the pixel limit.

Checked before any pixel is decoded, so a huge or broken file costs a clear error, not the
machine's memory. The errors are :class:`ImageReadError` (and :class:`ImageTooLargeError`),
each naming the file.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from pathlib import Path

class ImageReadError(ValueError):
    """An input file cannot be read, or holds something that is not a 2D image."""


class ImageTooLargeError(ImageReadError):
    """A file declares more pixels than :func:`max_pixels` allows (refused before decoding)."""


#: Environment variable raising (or lowering) the pixel limit, in pixels (height x width).
MAX_PIXELS_ENV = "NANOGAN_MAX_PIXELS"
#: The default limit: 100 megapixels, room for the 8192 x 8192 images the product supports.
DEFAULT_MAX_PIXELS = 100_000_000
#: Decoded data may take at most this many bytes per pixel of the limit (8: one float64 value).
BYTES_PER_PIXEL = 8


def max_pixels() -> int:
    """The pixel limit of every image and mask read: ``$NANOGAN_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`.

    Read at each call (not at import), so a script may change it between reads.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise ImageReadError(f"${MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r}: expected a whole number of pixels, "
                             f"e.g. {2 * DEFAULT_MAX_PIXELS}")
    return value


def check_declared_size(path, shape, itemsize: int = 1) -> None:
    """Refuse a file whose declared size exceeds the limit, before any pixel is decoded.

    ``shape`` is the array the file says it holds (a trailing axis of 3 or 4 is colour
    samples, not pixels); ``itemsize`` the bytes per sample.
    """
    shape = tuple(int(v) for v in shape)
    samples = shape[-1] if len(shape) >= 3 and shape[-1] in (3, 4) else 1
    pixels = math.prod(shape) // samples
    limit = max_pixels()
    size = " x ".join(map(str, shape[:-1] if samples > 1 else shape))
    advice = (f"raise the limit with the environment variable {MAX_PIXELS_ENV} (e.g. {MAX_PIXELS_ENV}="
              f"{max(2 * limit, pixels)}) if this machine has the memory, or store it as zarr / OME-Zarr: "
              "`nanogan segment montage.zarr` segments it block by block")
    if pixels > limit:
        raise ImageTooLargeError(f"{path}: declares {size} = {pixels / 1e6:.1f} megapixels, over the limit of "
                                 f"{limit / 1e6:.1f} megapixels (refused before decoding); {advice}")
    nbytes = math.prod(shape) * int(itemsize)
    if nbytes > BYTES_PER_PIXEL * limit:
        raise ImageTooLargeError(f"{path}: declares {size} with {samples} x {itemsize}-byte samples = "
                                 f"{nbytes / 2**20:.0f} MiB decoded, over the limit of "
                                 f"{BYTES_PER_PIXEL * limit / 2**20:.0f} MiB (refused before decoding); {advice}")


def check_readable_file(path: Path) -> None:
    """A clear :class:`ImageReadError` for what is not a readable regular file (missing, folder, link loop)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        what = "a broken symbolic link" if path.is_symlink() else "no such file"
        raise ImageReadError(f"{path}: {what}") from None
    except OSError as exc:  # ELOOP, EACCES, ENAMETOOLONG ...
        reason = "a symbolic link loop" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__).lower()
        raise ImageReadError(f"{path}: {reason}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageReadError(f"{path}: is a folder, not an image file (give the folder itself as an input to read "
                             "the images in it)")
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes): an interrupted copy or download?")


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
