import numpy as np
import pytest

from conftest import DATA, requires_shared
from napari_nanogan.io.infobar import detect_info_bar


def _specimen(rng, h=400, w=500):
    return np.clip(rng.normal(60, 25, (h, w)), 0, 255).astype(np.uint8)


def _with_bar(img, rows, side="bottom", value=15):
    bar = np.full((rows, img.shape[1]), value, np.uint8)
    bar[rows // 3 : rows // 3 + 6, 30:200:3] = 240  # text
    bar[-8:-5, 300:420] = 255  # scale bar
    return np.concatenate([img, bar] if side == "bottom" else [bar, img], axis=0)


def test_bottom_bar_found(rng):
    img = _with_bar(_specimen(rng), 40)
    bar = detect_info_bar(img)
    assert bar is not None and (bar.start, bar.stop, bar.side) == (400, 440, "bottom")
    assert bar.specimen_rows == slice(0, 400)


def test_top_bar_found(rng):
    bar = detect_info_bar(_with_bar(_specimen(rng), 30, side="top"))
    assert bar is not None and (bar.start, bar.stop, bar.side) == (0, 30, "top")
    assert bar.specimen_rows == slice(30, None)


def test_no_bar_on_plain_specimen(rng):
    assert detect_info_bar(_specimen(rng)) is None


def test_blank_band_without_text_is_not_a_bar(rng):
    img = np.concatenate([_specimen(rng), np.full((40, 500), 15, np.uint8)])
    assert detect_info_bar(img) is None


def test_too_tall_band_is_not_a_bar(rng):
    assert detect_info_bar(_with_bar(_specimen(rng, h=100), 200)) is None


def test_float_and_tiny_images(rng):
    img = _with_bar(_specimen(rng), 40).astype(np.float32) / 255
    assert detect_info_bar(img).start == 400
    assert detect_info_bar(np.zeros((10, 10), np.uint8)) is None


@requires_shared
def test_bam_info_bar_rows():
    from napari_nanogan.io.images import read_image

    images = sorted((DATA / "bam_tio2_sem" / "images").glob("*.tif"))
    assert len(images) == 30
    for path in images:
        img, meta = read_image(path)
        bar = detect_info_bar(img)
        assert bar is not None and abs(bar.start - 712) <= 2 and bar.stop == 768, path.name
        assert meta["pixel_size_nm"] == pytest.approx(7.344)


@requires_shared
def test_emps_no_false_bars():
    """EMPS figure crops: a detected bar must never cover annotated particles (all 366 images)."""
    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.masks import read_mask

    root = DATA / "emps"
    stems = (root / "ids.txt").read_text().split()
    found = []
    for stem in stems:
        img, _ = read_image(root / "images" / f"{stem}.png")
        bar = detect_info_bar(img)
        if bar is not None:
            mask = read_mask(root / "masks" / f"{stem}.png")
            assert (mask[bar.start : bar.stop] > 0).sum() == 0, stem
            found.append(stem)
    assert len(found) <= 0.05 * len(stems)  # bars are the exception in figure crops


@pytest.mark.parametrize("dtype,scale", [(np.uint32, 16_000_000), (np.int64, 2**40), (np.uint64, 2**50)])
def test_wide_range_integers_need_no_histogram_of_the_range(rng, dtype, scale):
    """A per-row histogram over a uint32 range scaled by 16e6 asked for 24 GiB; rows are sorted instead."""
    import tracemalloc

    img = _with_bar(_specimen(rng), 40).astype(dtype) * dtype(scale)
    if dtype == np.int64:
        img -= np.int64(2**62)  # negative values too
    tracemalloc.start()
    try:
        bar = detect_info_bar(img)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert bar is not None and (bar.start, bar.stop) == (400, 440)
    assert peak < 20 * img.nbytes + 2**20


def test_float_image_with_nan_and_inf(rng):
    img = _with_bar(_specimen(rng), 40).astype(np.float32)
    img[5, 7], img[9, 9] = np.nan, np.inf
    assert detect_info_bar(img).start == 400
    assert detect_info_bar(np.full((100, 100), np.nan, np.float32)) is None
