"""Gatan DigitalMicrograph (.dm3 / .dm4) files written from scratch, for the reader's tests.

No DM file may be committed (the shared images' licences) and no reader library writes
them, so the tests make their own: the tag-file layout of Gatan's format (version 3:
32-bit lengths, version 4: 64-bit), as Gatan Microscopy Suite writes an image: a
thumbnail first in ``ImageList`` (listed under ``Thumbnails``), then the image with its
``Calibrations`` (origin, scale and unit per dimension). Tag-header fields are big-endian;
the values are little-endian, as the header's byte-order flag says.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# DM tag value types
SHORT, LONG, USHORT, ULONG, FLOAT, DOUBLE, BOOL = 2, 3, 4, 5, 6, 7, 8
_STRUCT = {SHORT: "<h", LONG: "<i", USHORT: "<H", ULONG: "<I", FLOAT: "<f", DOUBLE: "<d", BOOL: "<?"}
_ARRAY_TYPE = {np.dtype("int16"): SHORT, np.dtype("int32"): LONG, np.dtype("uint16"): USHORT,
               np.dtype("uint32"): ULONG, np.dtype("float32"): FLOAT, np.dtype("float64"): DOUBLE,
               np.dtype("uint8"): 10, np.dtype("int8"): 9}
# DM image data types (ImageData.DataType)
IMAGE_TYPE = {np.dtype("int16"): 1, np.dtype("float32"): 2, np.dtype("uint8"): 6, np.dtype("int32"): 7,
              np.dtype("int8"): 9, np.dtype("uint16"): 10, np.dtype("uint32"): 11, np.dtype("float64"): 12,
              np.dtype("complex64"): 3}
RGBA = 23


class _Value:
    def __init__(self, info: list[int], payload: bytes):
        self.info, self.payload = info, payload


def simple(kind: int, value) -> _Value:
    return _Value([kind], struct.pack(_STRUCT[kind], value))


def text(value: str) -> _Value:
    """A string as DM stores it: an array of 16-bit characters."""
    return _Value([20, USHORT, len(value)], value.encode("utf-16-le"))


def array(values: np.ndarray, kind: int | None = None) -> _Value:
    values = np.ascontiguousarray(values)
    kind = kind if kind is not None else _ARRAY_TYPE[values.dtype]
    count = values.nbytes // {SHORT: 2, LONG: 4, USHORT: 2, ULONG: 4, FLOAT: 4, DOUBLE: 8, 9: 1, 10: 1}[kind]
    return _Value([20, kind, count], values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes())


def _length(version: int) -> str:
    return ">q" if version == 4 else ">i"


def _tag(name: str, value, version: int) -> bytes:
    """One tag: a group (a dict, or a list of unnamed entries) or a data value."""
    head = struct.pack(">h", len(name)) + name.encode("latin-1")
    if isinstance(value, (dict, list)):
        items = value.items() if isinstance(value, dict) else (("", v) for v in value)
        children = b"".join(_tag(k, v, version) for k, v in items)
        body = b"\x00\x01" + struct.pack(_length(version), len(value)) + children
        size = struct.pack(">q", len(body)) if version == 4 else b""
        return b"\x14" + head + size + body
    body = b"%%%%" + struct.pack(_length(version), len(value.info))
    body += b"".join(struct.pack(_length(version), v) for v in value.info) + value.payload
    size = struct.pack(">q", len(body)) if version == 4 else b""
    return b"\x15" + head + size + body


def _image_group(data: np.ndarray, scale: float, units: str, kind: int | None, name: str,
                 scale_y: float | None = None) -> dict:
    height, width = data.shape[:2]
    if kind == RGBA:
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[..., :3] = data[..., 2::-1]  # stored as B, G, R, A bytes
        rgba[..., 3] = 255
        values, depth = array(rgba.view("<u4")[..., 0], ULONG), 4
    elif np.iscomplexobj(data):  # complex values: two floats per pixel
        values, depth, kind = array(data.astype(np.complex64).view(np.float32)), 8, IMAGE_TYPE[np.dtype("complex64")]
    else:
        values, depth, kind = array(data), data.dtype.itemsize, IMAGE_TYPE[data.dtype]
    dims = list(reversed(data.shape[:2])) + list(reversed(data.shape[2:] if kind != RGBA else ()))
    if data.ndim == 3 and kind != RGBA:  # a stack: DM orders the dimensions x, y, z
        dims = [data.shape[2], data.shape[1], data.shape[0]]
        values = array(np.ascontiguousarray(data))
    def calibration(step):
        return {"Origin": simple(FLOAT, 0.0), "Scale": simple(FLOAT, step), "Units": text(units)}

    steps = [scale, scale if scale_y is None else scale_y] + [scale] * (len(dims) - 2)  # x first, as DM orders them
    return {
        "ImageData": {
            "Calibrations": {
                "Brightness": {"Origin": simple(FLOAT, 0.0), "Scale": simple(FLOAT, 1.0), "Units": text("")},
                "Dimension": [calibration(step) for step in steps],
                "DisplayCalibratedUnits": simple(BOOL, True),
            },
            "Data": values,
            "DataType": simple(LONG, kind),
            "Dimensions": [simple(ULONG, d) for d in dims],
            "PixelDepth": simple(LONG, depth),
        },
        "ImageTags": {"Microscope Info": {"Voltage": simple(DOUBLE, 200000.0), "Indicated Magnification":
                                          simple(DOUBLE, 50000.0)}},
        "Name": text(name),
        "UniqueID": {"0": simple(LONG, 1), "1": simple(LONG, 2), "2": simple(LONG, 3), "3": simple(LONG, 4)},
    }


def write_dm(path, data: np.ndarray, *, version: int = 4, scale: float = 0.5, units: str = "nm",
             rgb: bool = False, thumbnail: bool = True, name: str = "image", scale_y: float | None = None,
             list_thumbnail: bool = True) -> Path:
    """Write ``data`` (M x N, M x N x 3 with ``rgb``, or a K x M x N stack) as a DM file.

    ``scale`` and ``units`` calibrate every dimension, as GMS does for a real-space image
    (``"1/nm"`` for a diffraction pattern; ``""`` and 1.0 for an uncalibrated one);
    ``scale_y`` gives y its own. ``list_thumbnail=False`` writes the thumbnail without the
    ``Thumbnails`` list that names it one, as some other software does.
    """
    path = Path(path)
    data = np.asarray(data)
    images = []
    if thumbnail:
        images.append(_image_group(np.zeros((8, 8, 3), np.uint8), 1.0, "", RGBA, "thumbnail"))  # GMS: colour
    images.append(_image_group(data, scale, units, RGBA if rgb else None, name, scale_y))
    root = {"ImageList": images}
    if thumbnail and list_thumbnail:
        root["Thumbnails"] = [{"ImageIndex": simple(LONG, 0)}]
    tags = b"\x00\x01" + struct.pack(_length(version), len(root))
    tags += b"".join(_tag(k, v, version) for k, v in root.items())
    header = struct.pack(">i", version) + struct.pack(_length(version), len(tags) + 8) + struct.pack(">i", 1)
    path.write_bytes(header + tags + b"\x00" * 8)
    return path
