import numpy as np
import pytest
import tifffile

from conftest import DATA, requires_shared
from napari_nanogan.io.scalebar import find_scale_bar, parse_length_nm, pixel_size_from_scale_bar


def _field(seed=0, shape=(300, 400), level=110):
    """A noisy grey field with a few mid-grey particles (nothing at the extremes but what a test draws)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(level, 6, shape)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for cy, cx in ((60, 80), (120, 250), (200, 150)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 20**2] = 170
    image[0, 0], image[0, 1] = 0, 255  # the extremes the bar shares
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_plain_bar_and_a_bar_with_end_ticks_give_their_lengths():
    image = _field()
    image[260:266, 300:380] = 255  # a white bar of 80 px
    bar = find_scale_bar(image)
    assert (bar.top, bar.bottom, bar.length_px, bar.level) == (260, 266, 80.0, "white")
    ticked = _field(1)
    ticked[270:272, 100:160] = 0  # |----| : 2-px ticks at columns 100-101 and 158-159, 58 px between centres
    ticked[264:278, 100:102] = ticked[264:278, 158:160] = 0
    bar = find_scale_bar(ticked)
    assert bar.level == "black" and bar.length_px == pytest.approx(58.0)
    assert pixel_size_from_scale_bar(ticked, 116.0)[0] == pytest.approx(2.0)


def test_a_thin_bar_whose_compressed_pixels_dim_here_and_there_is_measured_end_to_end():
    """A 1-px bar of a JPEG-compressed figure: some of its pixels fall just short of its level (within twice
    the tolerance), some a little further, 1-2 px at a time. Its whole length counts, not its longest clean piece."""
    image = _field(3)
    image[250, 100:190] = 255  # 90 px
    image[250, [106, 107]] = 236  # dimmed (the tolerance is 6 % of the range: 240)
    image[250, [130, 160, 161]] = 200  # fallen short
    bar = find_scale_bar(image)
    assert (bar.top, bar.start, bar.stop) == (250, 100.0, 190.0)
    noisy = _field(4)
    noisy[200, 60:260] = np.random.default_rng(0).choice([0, 0, 0, 20, 30], 200)  # a black bar, half its pixels dim
    noisy[200, 259] = 0
    noisy[200, 60] = 0
    assert find_scale_bar(noisy).length_px == pytest.approx(200.0, abs=1)
    beside = _field(5)  # a bar 3 px from a bright region of its level is not run into it
    beside[240:244, 100:160] = 255
    beside[230:260, 163:188] = 250  # (under half the bar: not taken for its other half, cut by a label)
    assert (find_scale_bar(beside).start, find_scale_bar(beside).stop) == (100.0, 160.0)
    dimmed = _field(6)  # nor across a long stretch of merely dimmed pixels to a lone one at its level
    dimmed[240, 100:150] = 255
    dimmed[240, 150:260] = 232
    dimmed[240, 260] = 255
    assert (find_scale_bar(dimmed).start, find_scale_bar(dimmed).stop) == (100.0, 150.0)
    wide = _field(7)  # nor beyond 70 % of the image's width
    wide[240, 60:340] = 255
    wide[240, 340:372] = 236
    wide[240, 20:60] = 236
    assert find_scale_bar(wide).length_px == 280.0


def test_a_bar_cut_by_its_label_is_taken_whole():
    image = _field(2)
    image[250:253, 40:100] = image[250:253, 130:190] = 255  # |--- 2 um ---|
    image[245:258, 40:42] = image[245:258, 188:190] = 255
    image[247:256, 104:126:3] = 255  # the label's strokes in the gap
    assert find_scale_bar(image).length_px == 148.0  # tick centre to tick centre, across the label's gap


def test_what_is_not_a_scale_bar_is_not_taken_for_one():
    assert find_scale_bar(_field()) is None  # particles only
    frame = _field(3)
    frame[0:3, 50:300] = 255  # a frame's top edge, on the image's edge
    rod = _field(4)
    rod[150:160, 100:160] = 0  # a dark rod bent upwards at its right end: a thick "tick"
    rod[110:160, 150:160] = 0
    crack = _field(5)
    crack[200:202, 100:160] = 0  # a dark line along the edge of a dark region: not standing out below
    crack[202:230, 80:180] = 20
    letter = _field(6)
    letter[250:256, 100:200] = 255
    letter[230:256, 140:146] = 255  # a stroke rising from its middle: not a bar
    flat = np.full((50, 60), 7, np.uint8)
    for image in (frame, rod, crack, letter, flat):
        assert find_scale_bar(image) is None


def test_the_info_bars_scale_bar_comes_first():
    image = _field(7, shape=(400, 500))
    image[340:, :] = 0  # a microscope's data bar
    image[370:372, 400:430] = 255  # its scale bar, 30 px
    image[300:306, 50:250] = 255  # a longer white bar in the image above it
    assert find_scale_bar(image).length_px == 30.0


def test_lengths_are_read_with_their_units():
    assert parse_length_nm("200nm") == 200.0 and parse_length_nm(" 0.5 um") == 500.0
    assert parse_length_nm("1µm") == 1000.0 and parse_length_nm("20 Å") == pytest.approx(2.0)
    assert parse_length_nm("50") == 50.0
    for bad in ("abc", "0 nm", "5 furlongs", "-3nm", ""):
        with pytest.raises(ValueError):
            parse_length_nm(bad)
    with pytest.raises(ValueError, match="no scale bar found"):
        pixel_size_from_scale_bar(_field(), 100.0)
    with pytest.raises(ValueError, match="positive"):
        pixel_size_from_scale_bar(_field(), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        parse_length_nm("1e400 nm")
    dark = _field(10) // 2 + 60  # the darkest grey 60, not 0: a bar at the image's own darkest level is found
    dark[260:264, 100:180] = 60
    assert find_scale_bar(dark).length_px == 80.0


def test_segment_takes_each_images_pixel_size_from_its_scale_bar(tmp_path, tiny_checkpoint, capsys):
    from napari_nanogan.cli import main
    from napari_nanogan.io.images import labels_pixel_size_nm

    with_bar, without = _field(8), _field(9)
    with_bar[270:274, 250:350] = 0  # 100 px
    tifffile.imwrite(tmp_path / "a.tif", with_bar)
    tifffile.imwrite(tmp_path / "b.tif", without)
    rc = main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--scale-bar", "0.5um",
               "--out", str(tmp_path / "out"), "--model", str(tiny_checkpoint)])
    out = capsys.readouterr()
    assert rc == 1 and labels_pixel_size_nm(tmp_path / "out" / "a_labels.tif") == pytest.approx(5.0)
    assert "a scale bar of 100 px = 500 nm" in out.out + out.err and "b.tif: no scale bar found" in out.err
    with pytest.raises(SystemExit):  # argparse: one or the other
        main(["segment", str(tmp_path / "a.tif"), "--scale-bar", "200nm", "--pixel-size", "3", "--out", str(tmp_path)])


def test_a_scale_bar_length_without_its_unit_is_taken_in_nm_with_a_warning_and_a_space_before_it_is_explained(
        tmp_path, tiny_checkpoint, capsys):
    from napari_nanogan.cli import main

    image = _field(8)
    image[270:274, 250:350] = 0  # 100 px
    tifffile.imwrite(tmp_path / "a.tif", image)
    assert main(["segment", str(tmp_path / "a.tif"), "--scale-bar", "500", "--out", str(tmp_path / "out"),
                 "--model", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr()
    assert "--scale-bar 500 has no unit: taken as 500 nm" in out.err and "100 px = 500 nm" in out.out + out.err
    assert main(["segment", str(tmp_path / "a.tif"), "--scale-bar", "0.5um", "--out", str(tmp_path / "out2"),
                 "--model", str(tiny_checkpoint)]) == 0
    assert "no unit" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["segment", str(tmp_path / "a.tif"), "--scale-bar", "0.5", "um", "--out", str(tmp_path / "out3")])
    assert "a length and its unit are one word: 0.5um, or '0.5 um' in quotes" in capsys.readouterr().err


@requires_shared
def test_the_scale_bars_of_the_bam_fields_give_their_recorded_pixel_size():
    """Every BAM field's Zeiss bar (200 nm, one of 300 nm) gives the 7.344 nm the file records, within 1 %."""
    from napari_nanogan.io.images import read_image

    paths = sorted((DATA / "bam_tio2_sem" / "images").glob("*.tif"))
    assert len(paths) == 30
    for path in paths:
        image, meta = read_image(path)
        bar = find_scale_bar(image)
        assert bar is not None and 712 <= bar.top < 768, path.name  # in the data bar
        nominal = 300.0 if path.stem == "1908264" else 200.0  # (as the data bar's label says)
        assert nominal / bar.length_px == pytest.approx(meta["pixel_size_nm"], rel=0.01), path.name


def test_gaps_along_rows_are_bridged_as_a_closing_would():
    from scipy import ndimage as ndi

    from napari_nanogan.io.scalebar import GAP_PX, _bridged

    rng = np.random.default_rng(0)
    for share in (0.1, 0.5, 0.9):
        at = rng.random((60, 80)) < share
        assert (_bridged(at) == (at | ndi.binary_closing(at, np.ones((1, GAP_PX + 1), bool)))).all()


def test_a_length_is_unitless_only_as_a_bare_number():
    from napari_nanogan.io.scalebar import length_is_unitless

    assert all(length_is_unitless(t) for t in ("1", " 1.0 ", ".5", "1e3", "200"))
    assert not any(length_is_unitless(t) for t in ("1um", "200 nm", "0.5 µm", "20 Å", "lots", ""))
