import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import yaml

MANIFEST = Path(import_module("napari_nanogan").__file__).with_name("napari.yaml")


def test_import_loads_neither_torch_nor_qt():
    code = ("import sys, napari_nanogan, napari_nanogan.io, napari_nanogan._napari, napari_nanogan.config; "
            "bad = [m for m in ('torch', 'qtpy', 'PyQt6', 'PyQt5', 'napari') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"heavy modules imported: {proc.stdout} {proc.stderr}"


def test_manifest_validates_and_every_python_name_resolves():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-nanogan"
    raw = yaml.safe_load(MANIFEST.read_text())
    for command in raw["contributions"]["commands"]:
        module, attr = command["python_name"].split(":")
        assert callable(getattr(import_module(module), attr)), command["id"]


def test_reader_and_sample(tmp_path):
    import numpy as np
    import tifffile

    from napari_nanogan._napari import get_reader, sample_sem

    layers = sample_sem()
    (image, kwargs, kind), (labels, lkw, lkind), (_, bar_kw, bar_kind) = layers
    assert bar_kind == "shapes" and bar_kw["metadata"]["info_bar_rows"] == (712, 768)  # the sample's bar outlined
    assert kind == "image" and lkind == "labels" and image.shape == (768, 1024)
    assert kwargs["scale"] == (7.344, 7.344) and kwargs["metadata"]["info_bar_rows"] == (712, 768)
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, image, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=7.344e-09\n", True)])
    reader = get_reader(str(path))
    (data, meta, kind), (rect, shape_kw, shape_kind) = reader(str(path))
    assert np.array_equal(data, image) and meta["scale"] == pytest.approx((7.344, 7.344))
    assert meta["units"] == ("nm", "nm") and meta["metadata"]["pixel_size_nm"] == pytest.approx(7.344)
    assert shape_kind == "shapes" and shape_kw["metadata"]["info_bar_rows"] == (712, 768)
    assert rect[0][0][0] == pytest.approx(711.5) and rect[0][2][0] == pytest.approx(767.5)
    assert get_reader(str(tmp_path / "x.txt")) is None  # PNG, JPEG and BMP are read too (tests/test_reader.py)
    (tmp_path / "bad.tif").write_bytes(b"nope")
    assert get_reader(str(tmp_path / "bad.tif")) is None
