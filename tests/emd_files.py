"""Thermo Fisher Velox EMD files (HDF5) written from scratch, for the reader's tests.

The layout Velox writes for an image: a ``Version`` dataset (JSON: format ``Velox``),
``Data/Image/<id>/Data`` of shape (height, width, frames), and beside it ``Metadata``:
the acquisition's JSON as a column of bytes, whose ``BinaryResult`` gives the pixel size
in metres (``PixelSize``, ``PixelUnitX``) and whose ``Detectors`` name the detector.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _json_column(value: dict) -> np.ndarray:
    raw = json.dumps(value).encode("utf-8")
    return np.frombuffer(raw, np.uint8).reshape(-1, 1)


def write_velox(path, data: np.ndarray, *, pixel_size_m: float | None = 1e-9, unit: str = "m",
                detector: str = "HAADF", frames: int = 1, chunked: bool = True, also: dict | None = None) -> Path:
    """Write ``data`` (M x N) as a Velox image, or ``data`` of frames x M x N as a series of those frames.

    ``frames`` > 1 stores that many copies of an M x N ``data`` along the frame axis (a series);
    ``pixel_size_m=None`` leaves the calibration out; ``also``: {detector name: image} of
    more detectors' images in the same file (each its own ``Data/Image/<id>`` group).
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        f.create_dataset("Version", data=np.array([json.dumps({"format": "Velox", "version": "11"}).encode()]))
        images = {detector: data, **(also or {})}
        for k, (name, image) in enumerate(images.items()):
            _image(f, f"{k:02d}3a1b5e7d2f4a6c9e0b1d3f5a7c9e1b", np.asarray(image), pixel_size_m, unit, name, frames,
                   chunked)
    return path


def _image(f, key, data, pixel_size_m, unit, detector, frames, chunked):
    series = data if data.ndim == 3 else None  # frames x height x width, each its own
    data = data[0] if series is not None else data
    binary = {"DetectorIndex": "0", "ImageSize": {"width": str(data.shape[1]), "height": str(data.shape[0])},
              "Offset": {"x": "0", "y": "0"}}
    if pixel_size_m is not None:
        binary.update(PixelSize={"width": repr(pixel_size_m), "height": repr(pixel_size_m)}, PixelUnitX=unit,
                      PixelUnitY=unit)
    metadata = {
        "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1764979200"}},
        "BinaryResult": binary,
        "Detectors": {"Detector-0": {"DetectorName": detector, "DetectorType": "ScanningDetector"}},
        "Optics": {"AccelerationVoltage": "200000"},
        "Instrument": {"InstrumentClass": "Talos"},
        "Scan": {"FrameTime": "2.5"},
        "CustomProperties": {},
    }
    stack = np.moveaxis(series, 0, -1) if series is not None else np.repeat(data[:, :, np.newaxis], frames, axis=2)
    group = f.create_group(f"Data/Image/{key}")
    group.create_dataset("Data", data=stack, chunks=(*data.shape, 1) if chunked else None)
    group.create_dataset("Metadata", data=_json_column(metadata))
