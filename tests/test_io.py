import errno
import re

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanogan.io.images import ImageReadError, as_grey, labels_pixel_size_nm, list_images, read_image, write_labels
from napari_nanogan.io.masks import read_mask


def test_as_grey_kinds():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_grey(grey) is grey or np.array_equal(as_grey(grey), grey)
    rgb_same = np.repeat(grey[..., None], 3, axis=-1)
    assert np.array_equal(as_grey(rgb_same), grey) and as_grey(rgb_same).dtype == np.uint8
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0] = 100
    assert np.allclose(as_grey(rgb), 29.9)
    rgba = np.concatenate([rgb, np.full((3, 4, 1), 7, np.uint8)], axis=-1)
    assert np.allclose(as_grey(rgba), 29.9)
    assert as_grey(np.zeros((1, 5, 6))).shape == (5, 6)
    assert as_grey(np.ones((4, 4), bool)).dtype == np.uint8


@pytest.mark.parametrize("shape", [(5, 6, 7), (2, 3, 4, 5), (10,)])
def test_as_grey_rejects_stacks(shape):
    with pytest.raises(ImageReadError, match="2D"):
        as_grey(np.zeros(shape))


def test_as_grey_rejects_empty_and_strings():
    with pytest.raises(ImageReadError, match="empty"):
        as_grey(np.zeros((0, 5)))
    with pytest.raises(ImageReadError, match="pixel type"):
        as_grey(np.array([["a", "b"]]))


def test_read_image_kinds(tmp_path):
    g8 = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64)
    tifffile.imwrite(tmp_path / "u8.tif", g8)
    tifffile.imwrite(tmp_path / "u16.tif", g8.astype(np.uint16) * 200)
    tifffile.imwrite(tmp_path / "f32.tif", g8.astype(np.float32) / 255)
    Image.fromarray(g8).save(tmp_path / "g.png")
    Image.fromarray(np.stack([g8] * 3, -1)).save(tmp_path / "rgb.png")
    pal = Image.fromarray(g8, mode="L").convert("P")
    pal.save(tmp_path / "pal.png")
    for name, dtype in [("u8.tif", np.uint8), ("u16.tif", np.uint16), ("f32.tif", np.float32), ("g.png", np.uint8), ("rgb.png", np.uint8)]:
        img, meta = read_image(tmp_path / name)
        assert img.shape == (48, 64) and img.dtype == dtype, name
        assert meta["pixel_size_nm"] is None
    img, _ = read_image(tmp_path / "pal.png")
    assert img.shape == (48, 64)


def test_a_palette_image_reads_as_its_colours_and_a_palette_mask_as_its_indices(tmp_path):
    idx = (np.arange(32 * 32) % 200).astype(np.uint8).reshape(32, 32)
    cmap = np.repeat((np.arange(256)[::-1] * 257)[None], 3, 0).astype(np.uint16)  # a grey palette, inverted
    tifffile.imwrite(tmp_path / "pal.tif", idx, photometric="palette", colormap=cmap)
    img, _ = read_image(tmp_path / "pal.tif")
    assert img.dtype == np.uint8 and np.array_equal(img, 255 - idx)  # what a viewer shows
    red = cmap.copy()
    red[1:] = 0  # a colour palette: grey by luma
    tifffile.imwrite(tmp_path / "red.tif", idx, photometric="palette", colormap=red)
    assert np.allclose(read_image(tmp_path / "red.tif")[0], 0.299 * (255 - idx), atol=0.01)
    png = Image.fromarray(idx).convert("P", palette=Image.ADAPTIVE, colors=16)  # indices in no grey order
    png.save(tmp_path / "pal.png")
    shown = np.asarray(png.convert("L"), float)
    assert np.corrcoef(read_image(tmp_path / "pal.png")[0].ravel(), shown.ravel())[0, 1] > 0.999
    overlay = np.repeat((np.arange(256) * 257)[None], 3, 0).astype(np.uint16)  # a microscope's grey palette with
    overlay[:, 243] = 65535  # a few overlay entries (as BAM's files): the indices are the grey levels measured
    overlay[1:, 9] = 0
    grey = (np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32)
    tifffile.imwrite(tmp_path / "sem.tif", grey, photometric="palette", colormap=overlay)
    assert np.array_equal(read_image(tmp_path / "sem.tif")[0], grey)
    labels = np.zeros((32, 32), np.uint8)  # an annotation tool's palette mask: the indices are the labels
    labels[2:10, 2:10], labels[12:20, 12:20] = 1, 2
    mask = Image.fromarray(labels, "P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    mask.save(tmp_path / "pal_m.png")
    assert np.array_equal(read_mask(tmp_path / "pal_m.png"), labels)


def test_read_image_bad_files(tmp_path):
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="corrupt.tif"):
        read_image(tmp_path / "corrupt.tif")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "missing.tif")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 16, 16, 5), np.uint8))
    with pytest.raises(ImageReadError, match="2D"):
        read_image(tmp_path / "stack.tif")


def test_write_labels_round_trip_with_pixel_size(tmp_path):
    labels = np.zeros((30, 40), np.uint32)
    labels[2:5, 3:9] = 1
    labels[10:20, 10:20] = 70000
    path = write_labels(tmp_path / "x_labels.tif", labels, pixel_size_nm=7.344)
    back = tifffile.imread(path)
    assert back.dtype == np.uint32 and np.array_equal(back, labels)
    assert labels_pixel_size_nm(path) == pytest.approx(7.344, rel=1e-6)
    small = write_labels(tmp_path / "s_labels.tif", (labels > 0).astype(np.int64))
    assert tifffile.imread(small).dtype == np.uint16
    assert labels_pixel_size_nm(small) is None
    assert not list(tmp_path.glob("*.tmp"))


def test_read_mask_and_list_images(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:4, 2:4] = 255
    Image.fromarray(m).save(tmp_path / "a.png")
    Image.fromarray(np.stack([m] * 3, -1)).save(tmp_path / "b.png")
    assert np.array_equal(read_mask(tmp_path / "a.png") > 0, m > 0)
    assert np.array_equal(read_mask(tmp_path / "b.png") > 0, m > 0)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images([tmp_path])] == ["a.png", "b.png"]


def test_read_image_says_what_a_path_is(tmp_path):
    (tmp_path / "folder.tif").mkdir()
    with pytest.raises(ImageReadError, match="is a folder, not an image file"):
        read_image(tmp_path / "folder.tif")
    (tmp_path / "loop.tif").symlink_to(tmp_path / "loop.tif")
    with pytest.raises(ImageReadError, match="symbolic link loop"):
        read_image(tmp_path / "loop.tif")
    (tmp_path / "broken.tif").symlink_to(tmp_path / "gone.tif")
    with pytest.raises(ImageReadError, match="broken symbolic link"):
        read_image(tmp_path / "broken.tif")


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    from napari_nanogan.io.images import MAX_PIXELS_ENV, ImageTooLargeError

    tifffile.imwrite(tmp_path / "a.tif", np.zeros((40, 50), np.uint8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "1999")
    with pytest.raises(ImageTooLargeError, match=f"40 x 50 = 0.0 megapixels.*{MAX_PIXELS_ENV}"):
        read_image(tmp_path / "a.tif")
    with pytest.raises(ImageTooLargeError):
        read_mask(tmp_path / "a.tif")
    monkeypatch.setenv(MAX_PIXELS_ENV, "2000")
    assert read_image(tmp_path / "a.tif")[0].shape == (40, 50)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ImageReadError, match="expected a whole number of pixels"):
        read_image(tmp_path / "a.tif")


def test_default_limit_admits_8k_images():
    from napari_nanogan.io.images import check_declared_size

    check_declared_size("x.tif", (8192, 8192), 8)  # 64-bit grey
    check_declared_size("x.tif", (8192, 8192, 4), 2)  # 16-bit RGBA


def test_masks_are_checked_when_read(tmp_path):
    tifffile.imwrite(tmp_path / "neg.tif", np.array([[0, -1], [2, 3]], np.int16))
    with pytest.raises(ImageReadError, match="neg.tif: mask labels must be >= 0"):
        read_mask(tmp_path / "neg.tif")
    tifffile.imwrite(tmp_path / "frac.tif", np.array([[0, 0.5], [1, 1]], np.float32))
    with pytest.raises(ImageReadError, match="whole numbers"):
        read_mask(tmp_path / "frac.tif")


def test_an_overlay_caption_and_scale_bar_sit_below_the_picture():
    from napari_nanogan.overlay import captioned, nice_length, overlay_caption

    assert [nice_length(v) for v in (1504.0, 730.0, 99.0, 3.0)] == [1000.0, 500.0, 50.0, 2.0]
    picture = np.full((120, 300, 3), 77, np.uint8)
    text = overlay_caption(1, "default", info_bar=True)
    assert text == "1 particle; model default; below the yellow line: the info bar, left out"
    plain, scaled = captioned(picture, text), captioned(picture, text, pixel_size_nm=7.344)
    for out in (plain, scaled):
        assert out.shape[1:] == (300, 3) and out.shape[0] > 120
        np.testing.assert_array_equal(out[:120], picture)  # nothing of the picture covered

    def longest_black_run(strip):
        best = 0
        for row in strip[..., 0] < 40:
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
            best = max([best, *(edges[1::2] - edges[::2])])
        return best

    # the scale bar: 300 px x 7.344 nm / 5 -> 200 nm, 27 px of black; text strokes are short
    assert 26 <= longest_black_run(scaled[120:]) <= 28
    assert longest_black_run(plain[120:]) < 15


def test_caption_words_stay_apart_at_the_smallest_font():
    """On a narrow overlay (11-px font) the bundled font's space is as narrow as the gaps between letters
    ("4particles"); the caption keeps its words a third of the font size apart."""
    from napari_nanogan.overlay import captioned

    out = captioned(np.full((50, 680, 3), 100, np.uint8), "4 particles")
    ink = np.flatnonzero((out[50:, :, 0] < 128).any(0))
    runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)  # glyphs, left to right: "4", "p", "a", ...
    gaps = [b[0] - a[-1] - 1 for a, b in zip(runs, runs[1:])]
    assert gaps[0] > max(gaps[1:]), gaps  # the space after "4" is wider than any gap inside "particles"


def test_grey_with_alpha_png_reads_as_grey_and_as_a_mask(tmp_path):
    grey = np.zeros((40, 40, 2), np.uint8)
    grey[..., 0] = np.arange(40)[None] * 5
    grey[..., 1] = 255
    Image.fromarray(grey, "LA").save(tmp_path / "la.png")
    image, _ = read_image(tmp_path / "la.png")
    assert image.shape == (40, 40) and np.array_equal(image, grey[..., 0])
    mask = np.zeros((40, 40, 2), np.uint8)
    mask[10:20, 10:20, 0] = 255
    mask[..., 1] = 255
    mask[30:, :, 1] = 0  # transparent: background
    mask[30:, :, 0] = 255
    Image.fromarray(mask, "LA").save(tmp_path / "la_m.png")
    from napari_nanogan.io.masks import check_mask

    assert np.array_equal(check_mask(read_mask(tmp_path / "la_m.png")) > 0, mask[..., 0] * (mask[..., 1] > 0) > 0)


def test_pair_folders_gives_a_mask_to_the_image_of_the_longest_stem_it_fits(tmp_path):
    from napari_nanogan.io.pairs import pair_folders

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for stem in ("field", "field_2", "other"):
        tifffile.imwrite(tmp_path / "images" / f"{stem}.tif", np.zeros((8, 8), np.uint8))
    for stem in ("field_2_m", "other", "other_mask"):
        tifffile.imwrite(tmp_path / "masks" / f"{stem}.tif", np.zeros((8, 8), np.uint8))
    pairs = {stem: mask.name for stem, _, mask in pair_folders(tmp_path / "images", tmp_path / "masks")}
    assert pairs == {"field_2": "field_2_m.tif", "other": "other.tif"}  # "field" has no mask of its own


def test_write_labels_refuses_what_it_cannot_store_and_leaves_no_table_without_its_labels(tmp_path, monkeypatch):
    labels = np.zeros((20, 20), np.int64)
    labels[2:5, 2:5], labels[10:15, 10:15] = 1, 2
    for kwargs, words in ((dict(labels=labels * 2**32), "2**32"), (dict(labels=-labels), "0 (background)"),
                          (dict(labels=labels, confidence=[0.5]), "one per label"),
                          (dict(labels=labels, pixel_size_nm=float("nan")), "pixel size"),
                          (dict(labels=labels.astype(float)), "integer")):
        with pytest.raises(ValueError, match=re.escape(words)):
            write_labels(tmp_path / "a_labels.tif", **kwargs)
    assert not list(tmp_path.iterdir())

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full_disk)
    with pytest.raises(OSError, match="cannot write .*a_labels.tif: No space left"):
        write_labels(tmp_path / "a_labels.tif", labels, confidence=[0.9, 0.8])
    assert not list(tmp_path.iterdir())  # the table written first is gone with its labels


def test_non_square_pixels_give_no_pixel_size(tmp_path, caplog):
    image = np.zeros((50, 50), np.uint8)
    tifffile.imwrite(tmp_path / "ns.tif", image, imagej=True, resolution=(0.2, 0.1), metadata={"unit": "nm"})
    tifffile.imwrite(tmp_path / "sq.tif", image, imagej=True, resolution=(0.2, 0.2), metadata={"unit": "nm"})
    assert read_image(tmp_path / "ns.tif")[1]["pixel_size_nm"] is None
    assert "not square" in caplog.text
    assert read_image(tmp_path / "sq.tif")[1]["pixel_size_nm"] == pytest.approx(5.0)


def test_two_labels_without_background_are_two_particles():
    from napari_nanogan.io.masks import check_mask

    mask = np.ones((16, 16), np.uint8)
    mask[:, 8:] = 2
    assert set(np.unique(check_mask(mask))) == {1, 2}
    assert set(np.unique(check_mask(np.full((16, 16), 255, np.uint8)))) == {1}  # one value: binary, all particle


def test_labels_written_beside_a_users_csv_of_their_name_leave_it_alone(tmp_path):
    """napari's writer lets the user name the labels: a `results.csv` of theirs beside `results.tif` is neither
    removed nor taken for the labels' table, and a table that would replace it is refused."""
    from napari_nanogan.io.images import read_label_table, write_labels

    labels = np.zeros((20, 20), np.uint16)
    labels[2:8, 2:8], labels[10:16, 10:16] = 1, 2
    mine = tmp_path / "results.csv"
    mine.write_text("sample,confidence\nA,high\n")
    write_labels(tmp_path / "results.tif", labels)
    assert mine.read_text() == "sample,confidence\nA,high\n" and read_label_table(tmp_path / "results.tif", 2) is None
    with pytest.raises(FileExistsError, match="not a label table"):
        write_labels(tmp_path / "results.tif", labels, confidence=np.array([0.9, 0.5]))
    assert mine.read_text() == "sample,confidence\nA,high\n" and (tmp_path / "results.tif").is_file()
    write_labels(tmp_path / "ours.tif", labels, confidence=np.array([0.9, 0.5]))
    write_labels(tmp_path / "ours.tif", labels)  # rewritten without confidence: its own old table goes
    assert not (tmp_path / "ours.csv").exists()
