"""Pixel sizes from each vendor format we claim, on small TIFFs built here with those tags."""

import numpy as np
import pytest
import tifffile

from conftest import DATA, requires_shared
from napari_nanogan.io.images import read_image
from napari_nanogan.io.metadata import to_nm

IMG = (np.arange(64 * 80) % 255).astype(np.uint8).reshape(64, 80)


def _tif(path, **kw):
    tifffile.imwrite(path, IMG, **kw)
    return path


@pytest.mark.parametrize("text,expected", [
    ("AP_PIXEL_SIZE\nPixel Size = 7.344 nm\n", 7.344),
    ("AP_PIXEL_SIZE\nPixel Size = 1.25 µm\n", 1250.0),
    ("AP_PIXEL_SIZE\nPixel Size = 512 pm\n", 0.512),
])
def test_zeiss(tmp_path, text, expected):
    path = _tif(tmp_path / "z.tif", extratags=[(34118, "B", 0, text.encode("latin-1"), True)])  # Zeiss writes latin-1 "µ"
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(expected, rel=1e-12)
    assert "Zeiss" in meta["pixel_size_source"]


def test_fei(tmp_path):
    path = _tif(tmp_path / "f.tif", extratags=[(34682, "s", 0, "[User]\nDate=x\n[Scan]\nPixelWidth=3.3e-09\nPixelHeight=3.3e-09\n", True)])
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(3.3) and "FEI" in meta["pixel_size_source"]


def test_tescan(tmp_path):
    path = _tif(tmp_path / "t.tif", extratags=[(50431, "s", 0, "[MAIN]\nDevice=MIRA3\nPixelSizeX=4.5e-009\nPixelSizeY=4.5e-009\n", True)])
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(4.5) and "Tescan" in meta["pixel_size_source"]


def test_imagej_units(tmp_path):
    path = _tif(tmp_path / "ij.tif", imagej=True, resolution=(1 / 0.0125, 1 / 0.0125), metadata={"unit": "micron"})
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(12.5) and "ImageJ" in meta["pixel_size_source"]


def test_ome(tmp_path):
    path = tmp_path / "o.ome.tif"
    tifffile.imwrite(path, IMG, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.002, "PhysicalSizeXUnit": "µm",
                                                    "PhysicalSizeY": 0.002, "PhysicalSizeYUnit": "µm"})
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(2.0) and "OME" in meta["pixel_size_source"]


def test_resolution_in_cm_but_not_dpi(tmp_path):
    cm = _tif(tmp_path / "cm.tif", resolution=(1e7 / 6.5, 1e7 / 6.5), resolutionunit="CENTIMETER")
    assert read_image(cm)[1]["pixel_size_nm"] == pytest.approx(6.5, rel=1e-6)
    dpi = _tif(tmp_path / "dpi.tif", resolution=(72, 72), resolutionunit="INCH")
    assert read_image(dpi)[1]["pixel_size_nm"] is None


def test_hitachi_sidecar(tmp_path):
    path = _tif(tmp_path / "h.tif")
    (tmp_path / "h.txt").write_text("[SemImageFile]\nInstructName=S-4800\nPixelSize=4.961\nMagnification=25000\n")
    _, meta = read_image(path)
    assert meta["pixel_size_nm"] == pytest.approx(4.961) and "Hitachi" in meta["pixel_size_source"]


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "1e999"])
def test_sidecar_pixel_size_must_be_a_positive_length(tmp_path, value, caplog):
    path = _tif(tmp_path / "h.tif")
    (tmp_path / "h.txt").write_text(f"[SemImageFile]\nPixelSize={value}\n")
    assert read_image(path)[1]["pixel_size_nm"] is None
    assert any("not a positive length" in r.getMessage() for r in caplog.records) or value in ("nan", "inf")


def test_jeol_sidecar(tmp_path):
    from PIL import Image

    Image.fromarray(IMG).save(tmp_path / "j.bmp")
    (tmp_path / "j.txt").write_text("$CM_FORMAT JEOL/SEM\n$$SM_MICRON_BAR 125\n$$SM_MICRON_MARKER 500nm\n")
    _, meta = read_image(tmp_path / "j.bmp")
    assert meta["pixel_size_nm"] == pytest.approx(4.0) and "JEOL" in meta["pixel_size_source"]
    (tmp_path / "j.txt").write_text("$$SM_MICRON_BAR 100\n$$SM_MICRON_MARKER 1um\n")
    assert read_image(tmp_path / "j.bmp")[1]["pixel_size_nm"] == pytest.approx(10.0)


def test_unknown_pixel_size(tmp_path):
    _, meta = read_image(_tif(tmp_path / "plain.tif"))
    assert meta["pixel_size_nm"] is None and meta["pixel_size_source"] is None


def test_unit_conversions():
    assert to_nm(1, "m") == 1e9 and to_nm(2, "µm") == 2000 and to_nm(2, "um") == 2000
    assert to_nm(3, "nm") == 3 and to_nm(5, "Å") == 0.5 and to_nm(1, "mm") == 1e6
    with pytest.raises(ValueError, match="unknown length unit"):
        to_nm(1, "furlong")


@requires_shared
def test_bam_pixel_size_read_from_file():
    for path in sorted((DATA / "bam_tio2_sem" / "images").glob("*.tif")):
        _, meta = read_image(path)
        assert meta["pixel_size_nm"] == pytest.approx(7.344, abs=1e-9), path.name
