"""Microscope software's formats: Gatan DigitalMicrograph (.dm3, .dm4) and EMD (.emd: Velox, Berkeley) images
read with their pixel size, and refused clearly when they hold no image."""

import numpy as np
import pytest
import tifffile
from dm_files import write_dm
from emd_files import write_velox

from napari_nanogan._napari import get_reader
from napari_nanogan.cli import main
from napari_nanogan.io.images import (
    ImageReadError,
    ImageTooLargeError,
    as_grey,
    file_pixel_size,
    labels_pixel_size_nm,
    list_images,
    read_image,
)


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("dtype", ["uint16", "float32", "int16", "uint8"])
def test_a_dm_image_reads_as_stored_with_its_pixel_size(tmp_path, version, dtype):
    rng = np.random.default_rng(version)
    image = (rng.random((48, 64)) * 200).astype(dtype)
    path = write_dm(tmp_path / f"field.dm{version}", image, version=version, scale=0.25, units="µm")
    grey, meta = read_image(path)
    assert grey.dtype == image.dtype and np.array_equal(grey, image)
    assert meta["pixel_size_nm"] == pytest.approx(250.0)
    assert "DigitalMicrograph" in meta["pixel_size_source"] and "0.25 µm" in meta["pixel_size_source"]
    assert file_pixel_size(path)[0] == pytest.approx(250.0)


def test_the_pixel_size_is_x_s_and_the_image_not_a_thumbnail_listed_or_not(tmp_path):
    image = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64)
    for listed in (True, False):
        path = write_dm(tmp_path / f"listed{listed}.dm4", image, scale=0.25, scale_y=0.5, list_thumbnail=listed)
        grey, meta = read_image(path)
        assert np.array_equal(grey, image) and meta["pixel_size_nm"] == pytest.approx(0.25)
        assert file_pixel_size(path)[0] == pytest.approx(0.25)


@pytest.mark.parametrize(("scale", "units", "expected"), [
    (0.7344, "nm", 0.7344), (2.0, "Å", 0.2), (0.01, "um", 10.0),
    (0.05, "1/nm", None),  # a diffraction pattern: reciprocal space, no pixel size
    (1.0, "", None),  # uncalibrated
])
def test_the_calibration_becomes_a_pixel_size_only_in_real_space(tmp_path, scale, units, expected):
    path = write_dm(tmp_path / "a.dm4", np.zeros((16, 16), np.uint16), scale=scale, units=units)
    found = read_image(path)[1]["pixel_size_nm"]
    assert found == (pytest.approx(expected) if expected else None)


def test_a_colour_dm_image_becomes_grey_as_a_colour_tiff_does(tmp_path):
    rgb = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    path = write_dm(tmp_path / "rgb.dm3", rgb, version=3, rgb=True)
    grey, meta = read_image(path)
    assert np.allclose(grey, as_grey(rgb)) and meta["pixel_size_nm"] == pytest.approx(0.5)
    assert file_pixel_size(path)[0] == pytest.approx(0.5)


def test_what_is_no_2d_image_is_refused_naming_the_file(tmp_path):
    stack = write_dm(tmp_path / "series.dm4", np.zeros((3, 20, 30), np.uint16))
    with pytest.raises(ImageReadError, match=r"series\.dm4: holds a stack or series of 3 images of 20 x 30"):
        read_image(stack)
    fft = write_dm(tmp_path / "fft.dm4", np.zeros((16, 16), np.complex64), units="1/nm")
    with pytest.raises(ImageReadError, match=r"fft\.dm4.*complex"):
        read_image(fft)
    good = write_dm(tmp_path / "cut.dm3", np.zeros((64, 64), np.uint16), version=3)
    (tmp_path / "cut.dm3").write_bytes(good.read_bytes()[:300])  # an interrupted copy
    with pytest.raises(ImageReadError, match=r"cut\.dm3: cannot read"):
        read_image(tmp_path / "cut.dm3")
    (tmp_path / "notes.dm4").write_text("not a DigitalMicrograph file")
    with pytest.raises(ImageReadError, match=r"notes\.dm4: cannot read"):
        read_image(tmp_path / "notes.dm4")
    assert file_pixel_size(tmp_path / "notes.dm4") is None


def test_a_dm_image_over_the_pixel_limit_is_refused_before_its_pixels_are_read(tmp_path, monkeypatch):
    path = write_dm(tmp_path / "big.dm4", np.zeros((100, 120), np.uint16))
    monkeypatch.setenv("NANOGAN_MAX_PIXELS", "10000")
    with pytest.raises(ImageTooLargeError, match="100 x 120"):
        read_image(path)
    rgb = write_dm(tmp_path / "big_rgb.dm4", np.zeros((100, 120, 3), np.uint8), rgb=True)
    with pytest.raises(ImageTooLargeError):
        read_image(rgb)


def test_napari_opens_a_dm_file_at_its_pixel_size(tmp_path, sem_like):
    image, _ = sem_like
    path = write_dm(tmp_path / "field.dm4", image.astype(np.uint16), scale=7.344, units="nm")
    assert get_reader(str(tmp_path / "field.DM4")) is not None
    layers = get_reader(str(path))(str(path))
    data, kwargs, kind = layers[0]
    assert kind == "image" and np.array_equal(data, image)
    assert kwargs["scale"] == pytest.approx((7.344, 7.344)) and kwargs["units"] == ("nm", "nm")


def test_segment_reads_a_dm_file_as_it_reads_the_same_image_in_a_tiff(tmp_path, tiny_checkpoint, sem_like):
    image, _ = sem_like
    folder = tmp_path / "in"
    folder.mkdir()
    write_dm(folder / "field.dm3", image, version=3, scale=7.344, units="nm")
    tifffile.imwrite(tmp_path / "same.tif", image, resolution=(1e7 / 7.344, 1e7 / 7.344), resolutionunit="CENTIMETER")
    assert list_images([folder]) == [folder / "field.dm3"]
    for source, out in ((folder, "dm"), (tmp_path / "same.tif", "tif")):
        assert main(["segment", str(source), "--out", str(tmp_path / out), "--model", str(tiny_checkpoint)]) == 0
    dm_labels = tifffile.imread(tmp_path / "dm" / "field_labels.tif")
    assert np.array_equal(dm_labels, tifffile.imread(tmp_path / "tif" / "same_labels.tif"))
    assert labels_pixel_size_nm(tmp_path / "dm" / "field_labels.tif") == pytest.approx(7.344, rel=1e-5)


def test_a_mask_beside_a_dm_image_takes_its_pixel_size(tmp_path):
    from napari_nanogan.io.masks import pixel_size_of_its_image

    write_dm(tmp_path / "field.dm4", np.zeros((32, 32), np.uint16), scale=0.002, units="µm")
    mask = tmp_path / "field_m.tif"
    tifffile.imwrite(mask, np.zeros((32, 32), np.uint8))
    assert pixel_size_of_its_image(mask)["pixel_size_nm"] == pytest.approx(2.0)


@pytest.mark.parametrize("dtype", ["uint16", "float32", "uint8"])
def test_a_velox_image_reads_as_stored_with_its_pixel_size(tmp_path, dtype):
    image = (np.random.default_rng(1).random((48, 64)) * 200).astype(dtype)
    path = write_velox(tmp_path / "haadf.emd", image, pixel_size_m=2.5e-10)
    grey, meta = read_image(path)
    assert grey.dtype == image.dtype and np.array_equal(grey, image)
    assert meta["pixel_size_nm"] == pytest.approx(0.25) and "Velox HAADF" in meta["pixel_size_source"]
    assert file_pixel_size(path)[0] == pytest.approx(0.25)
    assert read_image(write_velox(tmp_path / "plain.emd", image, pixel_size_m=None))[1]["pixel_size_nm"] is None
    layers = get_reader(str(path))(str(path))
    assert layers[0][1]["scale"] == pytest.approx((0.25, 0.25))


def test_of_several_velox_detectors_the_haadf_image_is_read_and_the_file_closed(tmp_path):
    import os

    bf, haadf, eds = (np.full((32, 48), v, np.uint16) for v in (1, 2, 3))
    # the BF image comes first in the file; an EDS element map beside them
    path = write_velox(tmp_path / "stem.emd", bf, detector="BF", also={"HAADF": haadf, "SuperXG21": eds},
                       chunked=False)
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    grey, meta = read_image(path)
    assert np.array_equal(grey, haadf) and meta["image_read"] == "the HAADF image of 3"
    assert meta["pixel_size_source"].startswith("Velox HAADF")
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds  # nothing left open
    path.rename(tmp_path / "moved.emd")
    assert np.array_equal(read_image(write_velox(tmp_path / "bf.emd", bf, detector="BF"))[0], bf)


def test_a_berkeley_emd_image_reads_with_its_pixel_size(tmp_path):
    from rsciio.emd import file_writer

    image = (np.arange(40 * 60).reshape(40, 60) % 251).astype(np.uint16)
    axes = [{"name": n, "size": k, "scale": 0.5, "offset": 0.0, "units": "nm", "navigate": False}
            for n, k in (("y", 40), ("x", 60))]
    file_writer(str(tmp_path / "ncem.emd"), {"data": image, "axes": axes, "metadata": {"General": {"title": "t"}, "Signal": {}},
                                             "original_metadata": {}})
    grey, meta = read_image(tmp_path / "ncem.emd")
    assert np.array_equal(grey, image) and meta["pixel_size_nm"] == pytest.approx(0.5)
    assert meta["pixel_size_source"].startswith("EMD (Berkeley)")


def test_an_emd_series_or_a_broken_one_is_refused_naming_the_file(tmp_path, monkeypatch):
    image = np.zeros((32, 48), np.uint16)
    with pytest.raises(ImageReadError, match=r"series\.emd: holds a stack or series of 3 images"):
        read_image(write_velox(tmp_path / "series.emd", image, frames=3))
    (tmp_path / "cut.emd").write_bytes(write_velox(tmp_path / "whole.emd", image).read_bytes()[:500])
    with pytest.raises(ImageReadError, match=r"cut\.emd: cannot read"):
        read_image(tmp_path / "cut.emd")
    assert file_pixel_size(tmp_path / "cut.emd") is None
    monkeypatch.setenv("NANOGAN_MAX_PIXELS", "1000")
    with pytest.raises(ImageTooLargeError, match="32 x 48"):
        read_image(tmp_path / "whole.emd")


def test_segment_says_which_image_of_a_velox_file_it_segmented(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    path = write_velox(tmp_path / "stem.emd", image, detector="DF4", also={"BF": 255 - image}, pixel_size_m=7.344e-9)
    assert main(["segment", str(path), "--out", str(tmp_path / "out"), "--model", str(tiny_checkpoint)]) == 0
    assert "stem.emd (the DF4 image of 2): " in capsys.readouterr().out
    assert labels_pixel_size_nm(tmp_path / "out" / "stem_labels.tif") == pytest.approx(7.344, rel=1e-5)


def test_napari_opens_a_dm_or_velox_stack_whole_that_the_commands_refuse(tmp_path, monkeypatch):
    """A TEM series (an in-situ movie, a tilt or focal series) is viewed in napari frame by frame at its pixel
    size; segmenting takes one 2D image, so `nanogan segment` refuses it by name, as before."""
    from napari_nanogan.io.vendor import StackError

    frames = np.stack([np.full((20, 30), 10 * k, np.uint16) for k in range(3)])
    frames[:, 5:9, 7:12] += 1000
    dm = write_dm(tmp_path / "series.dm4", frames)
    series = np.stack([(np.arange(32 * 48).reshape(32, 48) * (k + 1) % 251) for k in range(3)]).astype(np.uint16)
    velox = write_velox(tmp_path / "series.emd", series)
    for path, expected, shape in ((dm, frames, (3, 20, 30)), (velox, series, (3, 32, 48))):
        with pytest.raises(StackError) as refused:
            read_image(path)
        assert (refused.value.frames, refused.value.height, refused.value.width) == shape
        assert "napari opens the whole stack" in str(refused.value)
        (data, kwargs, kind), = get_reader(str(path))(str(path))
        assert kind == "image" and data.shape == shape and np.array_equal(data, expected)
        assert kwargs["scale"][0] == 1.0 and kwargs["scale"][1] == kwargs["scale"][2] == kwargs["metadata"]["pixel_size_nm"]
        assert kwargs["metadata"]["frames"] == 3 and kwargs["units"][1:] == ("nm", "nm")
    assert get_reader(str(dm))(str(dm))[0][1]["scale"][-1] == pytest.approx(0.5)
    monkeypatch.setenv("NANOGAN_MAX_PIXELS", "1500")  # each frame fits; the whole stack (1800 px) does not
    with pytest.raises(ImageReadError, match="megapixels"):
        get_reader(str(dm))(str(dm))
