import csv
import math

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageDraw

from conftest import DATA, requires_shared
from napari_nanogan.cli import main
from napari_nanogan.measure import feret_diameters, measure_particles, summarize_sizes, weighted_percentiles


def test_rectangle_feret_exact():
    labels = np.zeros((50, 60), np.int32)
    labels[10:20, 5:35] = 1  # 10 x 30 px
    t = measure_particles(labels, pixel_size_nm=2.0)
    assert t.columns["area_nm2"][0] == pytest.approx(300 * 4)
    assert t.columns["feret_min_nm"][0] == pytest.approx(20.0)
    assert t.columns["feret_max_nm"][0] == pytest.approx(2 * math.hypot(10, 30))
    assert t.columns["aspect_ratio"][0] == pytest.approx(10 / math.hypot(10, 30))
    assert t.columns["solidity"][0] == pytest.approx(1.0)
    assert not t.columns["touches_border"][0]


def test_disc_measures_close_to_analytic():
    r = 40
    yy, xx = np.mgrid[0:101, 0:101]
    labels = ((yy - 50) ** 2 + (xx - 50) ** 2 <= r**2).astype(np.int32)
    t = measure_particles(labels)  # pixels
    assert t.unit == "px"
    assert t.columns["ecd_px"][0] == pytest.approx(2 * r, rel=0.01)
    assert t.columns["feret_max_px"][0] == pytest.approx(2 * r + 1, abs=1.0)  # pixel corners add up to 1 px
    assert t.columns["feret_min_px"][0] == pytest.approx(2 * r + 1, abs=1.0)
    assert t.columns["perimeter_px"][0] == pytest.approx(2 * math.pi * r, rel=0.01)
    assert t.columns["circularity"][0] > 0.98  # counting the pixel contour's steps gave 0.92


@pytest.mark.parametrize("r", [10, 25, 60])
def test_circularity_near_one_for_discs_and_pi_over_4_for_squares_of_any_orientation(r):
    from skimage.draw import polygon

    yy, xx = np.mgrid[0 : 2 * r + 9, 0 : 2 * r + 9]
    disc = ((yy - r - 4) ** 2 + (xx - r - 4) ** 2 <= r**2).astype(np.int32)
    assert measure_particles(disc).columns["circularity"][0] > (0.93 if r < 20 else 0.97)  # pixel steps gave 0.91-0.94
    side, found = 2 * r, []
    for angle in np.linspace(0, math.pi / 2, 10, endpoint=False):  # the estimate is unbiased over orientations
        c, s = math.cos(angle), math.sin(angle)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * side / 2 @ np.array([[c, -s], [s, c]]).T + side
        square = np.zeros((2 * side + 2, 2 * side + 2), np.int32)
        square[polygon(corners[:, 0], corners[:, 1], square.shape)] = 1
        found.append(measure_particles(square).columns["circularity"][0])
    assert np.mean(found) == pytest.approx(math.pi / 4, abs=0.05)


def test_feret_degenerate():
    assert feret_diameters(np.array([[3, 4]])) == pytest.approx((math.sqrt(2), 1.0))


def test_border_and_info_bar_flags_and_summary():
    labels = np.zeros((100, 100), np.int32)
    labels[0:10, 40:50] = 1  # touches the top edge
    labels[40:50, 40:50] = 2
    labels[85:90, 10:20] = 3  # touches an info bar starting at row 90
    labels[60:70, 60:72] = 4
    t = measure_particles(labels, pixel_size_nm=10, info_bar_start=90)
    assert list(t.columns["touches_border"]) == [True, False, False, False]
    assert list(t.columns["touches_info_bar"]) == [False, False, True, False]
    s = summarize_sizes(t)
    assert s["count"] == 2 and s["excluded_cut"] == 2 and s["unit"] == "nm"
    d = t.columns["ecd_nm"][[1, 3]]
    assert s["D50"] == pytest.approx(np.median(d)) and s["fraction_below_100nm"] == 0.0


def test_weighted_percentiles():
    assert weighted_percentiles(np.array([1.0, 2.0, 3.0]), np.ones(3), [50])[0] == pytest.approx(2.0)
    # volume weighting pulls the median towards the large particles
    assert weighted_percentiles(np.array([1.0, 10.0]), np.array([1.0, 1000.0]), [50])[0] > 5


def test_agrees_with_regionprops():
    from scipy.spatial import ConvexHull
    from skimage.measure import regionprops

    from napari_nanogan.data.procedural import particle_labels

    labels = particle_labels((150, 150), n_particles=20, seed=5)
    t = measure_particles(labels, pixel_size_nm=3.0)
    props = {p.label: p for p in regionprops(labels)}
    for i, lab in enumerate(t.columns["label"]):
        p = props[lab]
        assert t.columns["area_nm2"][i] == pytest.approx(p.area * 9)
        assert t.columns["ecd_nm"][i] == pytest.approx(p.equivalent_diameter_area * 3)
        assert t.columns["perimeter_nm"][i] == pytest.approx(p.perimeter_crofton * 3)
        # solidity: the area over the pixel centres inside the convex hull of the particle's pixel centres
        hull = ConvexHull(p.coords)
        inside = (hull.equations[:, :2] @ np.indices(labels.shape).reshape(2, -1) + hull.equations[:, 2:] <= 1e-9).all(0)
        assert t.columns["solidity"][i] == pytest.approx(p.area / inside.sum())
        # skimage's Feret max (marching-squares contour) is within a pixel of ours (pixel corners)
        assert abs(t.columns["feret_max_nm"][i] / 3 - p.feret_diameter_max) <= 1.5


def test_hull_measures_ignore_pixel_order():
    from napari_nanogan.measure import convex_pixel_count

    yy, xx = np.nonzero(np.add.outer(np.arange(30) ** 2, np.arange(40) ** 2) < 30**2)  # a quarter disc
    coords = np.stack([yy, xx], 1)
    shuffled = np.random.default_rng(0).permutation(coords)
    assert feret_diameters(shuffled) == pytest.approx(feret_diameters(coords))
    assert convex_pixel_count(shuffled) == convex_pixel_count(coords)


def test_measure_cli_round_trip(tmp_path):
    labels = np.zeros((60, 80), np.uint16)
    labels[10:20, 10:30] = 1
    labels[30:50, 40:60] = 2
    path = tmp_path / "x_labels.tif"
    tifffile.imwrite(path, labels)
    out = tmp_path / "sizes.csv"
    assert main(["measure", str(path), "--pixel-size", "5", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["label"] for r in rows] == ["1", "2"]
    assert {"image", "label", "area_nm2", "ecd_nm", "feret_max_nm", "feret_min_nm", "touches_border"} <= set(rows[0])
    assert float(rows[0]["area_nm2"]) == pytest.approx(200 * 25)
    assert float(rows[1]["feret_min_nm"]) == pytest.approx(100.0)
    summary = list(csv.DictReader(open(tmp_path / "sizes_summary.csv")))
    assert summary[0]["unit"] == "nm" and float(summary[0]["D50"]) > 0


def test_measure_cli_reads_pixel_size_from_segment_output(tmp_path):
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15] = 1
    write_labels(tmp_path / "a_labels.tif", labels, pixel_size_nm=7.344)
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--out", str(out)]) == 0
    row = next(csv.DictReader(open(out)))
    assert float(row["area_nm2"]) == pytest.approx(100 * 7.344**2, rel=1e-5)


def test_measure_writes_inputs_of_nm_and_of_pixels_in_their_own_columns(tmp_path, capsys):
    """One label file with a pixel size and one without used to be measured, printed, then
    refused (exit 2, no CSV): the work was lost."""
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15] = 1
    write_labels(tmp_path / "a_labels.tif", labels, pixel_size_nm=2.0)
    tifffile.imwrite(tmp_path / "b_labels.tif", labels)
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "b_labels.tif"), "--out", str(out)]) == 0
    assert "their lengths are in separate columns" in capsys.readouterr().err
    rows = {r["image"]: r for r in csv.DictReader(open(out))}
    assert float(rows["a_labels.tif"]["area_nm2"]) == pytest.approx(400) and rows["a_labels.tif"]["area_px2"] == ""
    assert float(rows["b_labels.tif"]["area_px2"]) == pytest.approx(100) and rows["b_labels.tif"]["area_nm2"] == ""
    summary = list(csv.DictReader(open(tmp_path / "m_summary.csv")))
    assert [(r["image"], r["unit"]) for r in summary] == [("a_labels.tif", "nm"), ("b_labels.tif", "px")]


def test_labels_remember_their_info_bar_so_measure_needs_no_image(tmp_path):
    """`nanogan segment` writes the info bar's first row into the labels TIFF: `measure` without --image
    leaves out the particles it cuts, as it does with --image."""
    from napari_nanogan.io.images import labels_info_bar_start, write_labels

    labels = np.zeros((60, 60), np.uint16)
    labels[5:15, 5:15] = 1
    labels[40:50, 20:30] = 2  # reaches row 49, just above the bar
    write_labels(tmp_path / "a_labels.tif", labels, pixel_size_nm=2.0, info_bar_start=50)
    write_labels(tmp_path / "b_labels.tif", labels, pixel_size_nm=2.0)
    assert labels_info_bar_start(tmp_path / "a_labels.tif") == 50
    assert labels_info_bar_start(tmp_path / "b_labels.tif") is None
    for name, cut in (("a", "true"), ("b", "false")):
        assert main(["measure", str(tmp_path / f"{name}_labels.tif"), "--out", str(tmp_path / f"{name}.csv")]) == 0
        rows = list(csv.DictReader(open(tmp_path / f"{name}.csv")))
        assert rows[1]["touches_info_bar"] == cut
        assert float(rows[0]["ecd_nm"]) == pytest.approx(2 * np.sqrt(100 / np.pi) * 2.0)


def test_measure_cli_without_pixel_size_uses_pixels(tmp_path, capsys):
    labels = np.zeros((40, 40), np.uint8)
    labels[5:15, 5:15] = 255  # binary mask: split into 4-connected parts
    labels[20:30, 20:30] = 255
    tifffile.imwrite(tmp_path / "m.tif", labels)
    assert main(["measure", str(tmp_path / "m.tif"), "--out", str(tmp_path / "o.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "o.csv")))
    assert len(rows) == 2 and "ecd_px" in rows[0]
    assert "pixel size unknown" in capsys.readouterr().out
    assert b"\r" not in (tmp_path / "o.csv").read_bytes() + (tmp_path / "o_summary.csv").read_bytes()
    # an --image without a pixel size either: the message does not ask for the --image given
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "m.png")
    assert main(["measure", str(tmp_path / "m.tif"), "--image", str(tmp_path / "m.png"), "--out", str(tmp_path / "i.csv")]) == 0
    assert "the --image gives none either: pass --pixel-size" in capsys.readouterr().out
    # two images of unknown scale: their pixels are not pooled into an "all" row; in nm they are
    tifffile.imwrite(tmp_path / "n.tif", labels)
    assert main(["measure", str(tmp_path / "m.tif"), str(tmp_path / "n.tif"), "--out", str(tmp_path / "p.csv")]) == 0
    assert [r["image"] for r in csv.DictReader(open(tmp_path / "p_summary.csv"))] == ["m.tif", "n.tif"]
    assert "no pooled 'all' row" in capsys.readouterr().err
    assert main(["measure", str(tmp_path / "m.tif"), str(tmp_path / "n.tif"), "--pixel-size", "2",
                 "--out", str(tmp_path / "q.csv")]) == 0
    assert [r["image"] for r in csv.DictReader(open(tmp_path / "q_summary.csv"))] == ["m.tif", "n.tif", "all"]


def test_measure_cli_pixel_size_overrides_the_image_and_min_area_drops_specks(tmp_path, capsys):
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((60, 60), np.uint16)
    labels[5:25, 5:25] = 1
    labels[40, 40] = 2  # a 1-px speck, as annotations hold
    labels[50:53, 10:13] = 3  # 9 px
    write_labels(tmp_path / "a_labels.tif", labels)
    write_labels(tmp_path / "a.tif", np.full((60, 60), 100, np.uint8), pixel_size_nm=7.0)  # an image that says 7 nm
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--image", str(tmp_path / "a.tif"), "--pixel-size", "2",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["label"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["area_nm2"]) == pytest.approx(400 * 4)  # 2 nm given wins over the image's 7 nm
    assert float(rows[0]["mean_intensity"]) == pytest.approx(100)  # the image still gives the intensities
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--pixel-size", "2", "--min-area", "9", "--out", str(out)]) == 0
    assert [r["label"] for r in csv.DictReader(open(out))] == ["1", "3"]
    with pytest.raises(SystemExit):
        main(["measure", str(tmp_path / "a_labels.tif"), "--min-area", "0", "--out", str(out)])
    assert "must be at least 1" in capsys.readouterr().err


def test_a_pixel_size_no_micrograph_has_is_measured_with_a_warning_naming_the_unit(tmp_path, capsys):
    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15] = 1
    tifffile.imwrite(tmp_path / "a_labels.tif", labels)
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--pixel-size", "7.344", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--pixel-size", "0.007344", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "below any electron micrograph's" in err and "--pixel-size 7.344" in err  # µm typed as nm
    assert float(next(csv.DictReader(open(out)))["area_nm2"]) == pytest.approx(100 * 0.007344**2)  # as given
    assert main(["measure", str(tmp_path / "a_labels.tif"), "--pixel-size", "734400", "--out", str(out)]) == 0
    assert "above any electron micrograph's" in capsys.readouterr().err


def test_measure_refuses_a_grey_image_given_as_labels_and_measures_the_rest(tmp_path, capsys, sem_like):
    image, labels = sem_like
    Image.fromarray(image).save(tmp_path / "image.png")  # the image, passed by mistake
    tifffile.imwrite(tmp_path / "good_labels.tif", labels.astype(np.uint16))
    out = tmp_path / "m.csv"
    rc = main(["measure", str(tmp_path / "image.png"), str(tmp_path / "good_labels.tif"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "looks like a grey image, not a mask" in err
    assert {r["image"] for r in csv.DictReader(open(out))} == {"good_labels.tif"}


def test_instance_masks_with_a_few_labels_in_pieces_are_still_masks():
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.io.masks import grey_image_reason

    labels = particle_labels((200, 200), n_particles=60, seed=1)
    n = int(labels.max())
    assert n >= 32 and grey_image_reason(labels) is None
    split = labels.copy()
    for k in range(1, n // 2 + 1):  # half the labels also own a far pixel: still a mask (annotations do this)
        split[0, 2 * k] = k
    assert grey_image_reason(split) is None
    noise = np.random.default_rng(0).integers(0, 200, (200, 200))  # grey levels everywhere
    assert grey_image_reason(noise) is not None
    # particles of a few pixels packed without gaps (a segmentation of tiny touching particles):
    # neighbours differ often, but each label is one region of its own
    from scipy.spatial import cKDTree

    seeds = np.random.default_rng(1).uniform(0, 200, (2500, 2))
    yy, xx = np.mgrid[:200, :200]
    packed = cKDTree(seeds).query(np.c_[yy.ravel(), xx.ravel()])[1].reshape(200, 200) + 1
    assert grey_image_reason(packed) is None
    # specks of a pixel or two beside the particles, as annotations hold them, and particles of 2 x 2 px
    specks = labels.copy()
    free = np.argwhere(labels == 0)[::211][: 3 * n // 2]
    specks[free[:, 0], free[:, 1]] = np.arange(n + 1, n + 1 + len(free))
    assert len(free) > n and grey_image_reason(specks) is None
    tiny = np.zeros((120, 120), np.int32)
    for k in range(100):  # 2 x 2 px particles on a 3-px grid
        y, x = 3 * (k // 10), 3 * (k % 10)
        tiny[y : y + 2, x : x + 2] = k + 1
    assert grey_image_reason(tiny) is None


def _smooth_field(shape=(256, 256), seed=0):
    """A grey picture with blobs and a gradient, as a micrograph has (not labels)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 6)
    field = (field - field.min()) / np.ptp(field)
    return field + np.linspace(0, 0.3, shape[1])[None]


def test_noisy_16_bit_and_rgb_pictures_are_refused_as_masks(tmp_path, capsys):
    """Detector noise leaves each grey level in single-pixel pieces (not several pieces per
    label), and an RGB picture was read as one binary blob: both were measured as particles."""
    from napari_nanogan.io.masks import ImageReadError, read_mask

    picture = _smooth_field()
    noisy16 = (picture / picture.max() * 60000 + np.random.default_rng(1).normal(0, 200, picture.shape))
    tifffile.imwrite(tmp_path / "noisy16.tif", noisy16.clip(0, 65535).astype(np.uint16))
    grey8 = (picture / picture.max() * 255).astype(np.uint8)
    Image.fromarray(np.repeat(grey8[..., None], 3, -1)).save(tmp_path / "rgb.png")
    for name in ("noisy16.tif", "rgb.png"):
        with pytest.raises(ImageReadError, match="looks like a grey image, not a mask: each of its [0-9]+ values appears in"):
            read_mask(tmp_path / name)
    rc = main(["measure", str(tmp_path / "noisy16.tif"), "--out", str(tmp_path / "m.csv")])
    assert rc == 1 and "looks like a grey image" in capsys.readouterr().err


def test_grey_labels_stored_as_rgb_keep_their_instances(tmp_path):
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.io.masks import read_mask

    labels = particle_labels((200, 200), n_particles=60, seed=2, overlap=0.5)
    assert labels.max() <= 255 and labels.max() >= 32
    Image.fromarray(np.repeat(labels.astype(np.uint8)[..., None], 3, -1)).save(tmp_path / "labels_rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "labels_rgb.png"), labels)
    smooth = np.zeros((64, 64), np.uint8)  # an anti-aliased white-on-black mask saved as RGB: binary, as before
    smooth[10:30, 10:30], smooth[40:60, 35:55] = 255, 255
    smooth[9, 10:30] = smooth[30, 10:30] = 128
    smooth[39, 35:55] = 64
    Image.fromarray(np.repeat(smooth[..., None], 3, -1)).save(tmp_path / "smooth_rgb.png")
    read = read_mask(tmp_path / "smooth_rgb.png")
    assert set(np.unique(read)) == {0, 1}
    red = np.zeros((64, 64, 3), np.uint8)  # one colour on black, with soft edges: binary
    red[5:20, 5:20], red[30:50, 30:50] = (255, 0, 0), (255, 0, 0)
    red[4, 5:20], red[50, 30:50] = (120, 0, 0), (60, 10, 0)
    Image.fromarray(red).save(tmp_path / "red.png")
    assert set(np.unique(read_mask(tmp_path / "red.png"))) == {0, 1}


def test_colour_coded_instance_masks_keep_touching_particles_apart(tmp_path):
    """Annotation tools export instances as colours; reading any colour as particle merged
    touching particles of different colours into one."""
    from napari_nanogan.io.masks import ImageReadError, instance_labels, mask_values, read_mask

    colour = np.zeros((64, 80, 3), np.uint8)
    colour[5:25, 5:25] = (255, 0, 0)
    colour[5:25, 25:45] = (0, 200, 0)  # touches the red one
    colour[40:60, 5:25] = (255, 0, 0)  # the palette reused for a separate particle
    colour[40:60, 50:70] = (0, 0, 255)
    colour[4, 5:45] = (90, 60, 0)  # a soft edge between colours
    Image.fromarray(colour).save(tmp_path / "colour.png")
    labels = instance_labels(read_mask(tmp_path / "colour.png"))
    assert labels.max() == 4
    sizes = [(labels == labels[y, x]).sum() for y, x in ((10, 10), (10, 30), (50, 10), (50, 60))]
    assert sizes[2:] == [400, 400] and min(sizes[:2]) >= 400 and sum(sizes[:2]) == 840  # the edge row joins them
    assert labels[0, 0] == 0 and labels[30, 30] == 0
    colour[40:42, 30:32] = (0, 255, 0)  # a 2 x 2 speck and a 1-px line: particles, not edges to drop
    colour[30, 50:75] = (255, 255, 0)
    labels = instance_labels(mask_values(colour))
    assert labels.max() == 6 and (labels == labels[40, 30]).sum() == 4 and (labels == labels[30, 60]).sum() == 25
    on_white = np.where((colour == 0).all(-1, keepdims=True), np.uint8(255), colour)  # no black: the border's colour
    np.testing.assert_array_equal(instance_labels(mask_values(on_white)) > 0, labels > 0)
    transparent = np.concatenate([on_white, np.where((colour == 0).all(-1, keepdims=True), 0, 255).astype(np.uint8)], -1)
    np.testing.assert_array_equal(instance_labels(mask_values(transparent)) > 0, labels > 0)
    deep = np.zeros((32, 32, 3), np.uint16)  # 16-bit colours that differ only above 8 bits stay apart
    deep[5:15, 5:15], deep[5:15, 15:25] = (0, 256, 0), (1, 0, 0)
    assert instance_labels(mask_values(deep)).max() == 2
    rgb = np.stack([(_smooth_field(seed=k) * 200).astype(np.uint8) for k in range(3)], -1)  # a colour picture
    Image.fromarray(rgb).save(tmp_path / "picture.png")
    with pytest.raises(ImageReadError, match="picture.png: this looks like a colour picture, not a mask: [0-9]+%"):
        read_mask(tmp_path / "picture.png")
    Image.fromarray(colour).save(tmp_path / "lossy.jpg", quality=90)  # a colour-coded mask saved as JPEG: said why
    with pytest.raises(ImageReadError, match="lossy.jpg: a JPEG mask can only be read as binary.*PNG or TIFF"):
        read_mask(tmp_path / "lossy.jpg")
    binary = np.zeros((128, 128), np.uint8)  # a binary mask saved as JPEG: its ringing made grey levels into labels
    for k in range(36):
        y, x = 4 + 20 * (k // 6), 4 + 20 * (k % 6)
        binary[y:y + 12, x:x + 12] = 255
    for name, data in (("grey.jpg", binary), ("red.jpg", np.stack([binary, 0 * binary, 0 * binary], -1))):
        Image.fromarray(data).save(tmp_path / name, quality=75)
        read = read_mask(tmp_path / name)
        assert set(np.unique(read)) == {0, 1} and instance_labels(read).max() == 36


@requires_shared
def test_every_shared_annotation_reads_as_a_mask_and_no_shared_image_does():
    from napari_nanogan.io.masks import ImageReadError, read_mask

    masks = sorted(DATA.glob("*/masks/*"))
    assert len(masks) >= 300
    for path in masks:
        read_mask(path)
    images = sorted(DATA.glob("*/images/*"))
    for path in images:
        with pytest.raises(ImageReadError, match="looks like a grey image"):
            read_mask(path)


@requires_shared
def test_bam_ground_truth_d50():
    """Median ECD of the BAM annotations: about 175 nm (data README)."""
    from napari_nanogan.io.masks import instance_labels
    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.masks import read_mask
    from napari_nanogan.measure import Measurements

    tables = []
    for img_path in sorted((DATA / "bam_tio2_sem" / "images").glob("*.tif"))[:10]:
        image, meta = read_image(img_path)
        mask = read_mask(DATA / "bam_tio2_sem" / "masks" / f"{img_path.stem}_m.tif")
        tables.append(measure_particles(instance_labels(mask[:712]), image=image[:712], pixel_size_nm=meta["pixel_size_nm"]))
    merged = Measurements({k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns}, "nm", 7.344)
    s = summarize_sizes(merged)
    assert 150 < s["D50"] < 200, s


def test_segment_file_stores_the_detected_info_bar_in_the_labels(tmp_path, tiny_segmenter, sem_like):
    """What `nanogan segment` (one process or a Dask cluster) writes lets `measure` find the bar alone."""
    from napari_nanogan.io.images import labels_info_bar_start
    from napari_nanogan.io.infobar import detect_info_bar
    from napari_nanogan.segmentation.files import segment_file

    image, _ = sem_like
    tifffile.imwrite(tmp_path / "a.tif", image)
    target, _ = segment_file(tmp_path / "a.tif", tmp_path / "out", tiny_segmenter)
    bar = detect_info_bar(image)
    assert bar is not None and bar.side == "bottom"
    assert labels_info_bar_start(target) == bar.start


def test_measure_leaves_out_doubtful_particles_when_asked(tmp_path, capsys):
    """--min-confidence drops particles the segmentation was unsure of from the table and the summary; files
    without a confidence keep all theirs, and say so."""
    from napari_nanogan.io.images import write_labels
    from napari_nanogan.measure import drop_doubtful, measure_particles

    labels = np.zeros((60, 80), np.uint16)
    labels[5:15, 5:15], labels[20:40, 20:40], labels[45:55, 60:70] = 1, 2, 3
    write_labels(tmp_path / "a_labels.tif", labels, pixel_size_nm=2.0, confidence=np.array([0.9, 0.3, 0.85]))
    tifffile.imwrite(tmp_path / "mask.tif", labels)  # an annotation: no confidence
    out = tmp_path / "m.csv"
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "mask.tif"), "--pixel-size", "2",
                 "--min-confidence", "0.8", "--out", str(out)]) == 0
    io = capsys.readouterr()
    assert "1 under confidence 0.8 left out" in io.out and "mask.tif has no confidence" in io.err
    rows = list(csv.DictReader(open(out)))
    assert [(r["image"], r["label"]) for r in rows] == [("a_labels.tif", "1"), ("a_labels.tif", "3"),
                                                          ("mask.tif", "1"), ("mask.tif", "2"), ("mask.tif", "3")]
    summary = {r["image"]: r for r in csv.DictReader(open(tmp_path / "m_summary.csv"))}
    assert summary["a_labels.tif"]["count"] == "2" and summary["mask.tif"]["count"] == "3"
    table = measure_particles(labels, confidence=np.array([0.9, np.nan, 0.1]))
    kept, dropped = drop_doubtful(table, 0.5)
    assert list(kept.columns["label"]) == [1, 2] and dropped == 1  # no confidence (NaN): kept
    assert drop_doubtful(table, 0.0) == (table, 0)
    with pytest.raises(SystemExit):
        main(["measure", str(tmp_path / "mask.tif"), "--min-confidence", "80", "--out", str(out)])


def test_a_mask_is_measured_at_the_pixel_size_of_the_image_of_its_name(tmp_path, capsys):
    """masks/<stem>_m.tif beside images/<stem>.tif (the shared data's and nanogan export's layout): the CLI takes
    the image's pixel size, as napari's reader does, so one mask measures in the same unit in both."""
    labels = np.zeros((40, 40), np.uint8)
    labels[5:15, 5:15] = 255
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "f1.tif", np.zeros((40, 40), np.uint8),
                     resolution=(1e7 / 7.344, 1e7 / 7.344), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "masks" / "f1_m.tif", labels)
    tifffile.imwrite(tmp_path / "masks" / "f2_m.tif", labels)  # no image of its name: pixels
    out = tmp_path / "s.csv"
    assert main(["measure", str(tmp_path / "masks" / "f1_m.tif"), "--out", str(out)]) == 0
    assert float(next(csv.DictReader(open(out)))["area_nm2"]) == pytest.approx(100 * 7.344**2, rel=1e-4)
    assert main(["measure", str(tmp_path / "masks" / "f2_m.tif"), "--out", str(out)]) == 0
    assert "area_px2" in next(csv.DictReader(open(out)))


def test_label_numbers_far_above_the_particle_count_are_measured_and_reported_as_given():
    """Hashed or 64-bit IDs (2**40): measured without a table of 2**40 entries, each row under its own number."""
    labels = np.zeros((50, 50), np.int64)
    labels[5:15, 5:15] = 2**40
    labels[20:30, 20:34] = 3 * 2**31
    table = measure_particles(labels)
    assert list(table.columns["label"]) == [3 * 2**31, 2**40]
    assert list(table.columns["area_px2"]) == [140.0, 100.0]
    full = np.full((40, 40), 7, np.uint64)  # no background anywhere, and an ID beyond int64
    full[:, 20:30], full[:, 30:] = 9, 2**63 + 5
    table = measure_particles(full)
    assert [int(v) for v in table.columns["label"]] == [7, 9, 2**63 + 5]
    assert list(table.columns["area_px2"]) == [800.0, 400.0, 400.0]


def test_negative_labels_are_refused_not_dropped():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6], labels[10:14, 10:14] = 1, -2
    with pytest.raises(ValueError, match="negative"):
        measure_particles(labels)


def test_a_top_info_bar_is_kept_with_the_labels_and_flags_what_it_cuts(tmp_path):
    from napari_nanogan.io.images import labels_info_bar_rows, write_labels
    from napari_nanogan.measure import measure_file, measure_particles

    labels = np.zeros((80, 60), np.uint16)
    labels[20:30, 5:15] = 1  # its first row is the first specimen row under a top bar of rows 0-19
    labels[40:50, 20:30] = 2
    table = measure_particles(labels, info_bar_end=20)
    assert list(table.columns["touches_info_bar"]) == [True, False]
    assert list(measure_particles(labels, info_bar_end=19).columns["touches_info_bar"]) == [False, False]  # a row apart
    assert list(measure_particles(labels, info_bar_end=19, info_bar_start=50).columns["touches_info_bar"]) == [False, True]
    write_labels(tmp_path / "top_labels.tif", labels, info_bar_end=20)
    assert labels_info_bar_rows(tmp_path / "top_labels.tif") == (None, 20)
    assert list(measure_file(tmp_path / "top_labels.tif").columns["touches_info_bar"]) == [True, False]
    image = np.full((80, 60), 90, np.uint8)  # with the image, its own (top) bar is found and used
    image[:20] = 0
    image[5:12, 5:50:4] = 255
    rng = np.random.default_rng(0)
    image[20:] = rng.integers(60, 200, (60, 60))
    tifffile.imwrite(tmp_path / "top.tif", image)
    write_labels(tmp_path / "plain_labels.tif", labels)
    from_image = measure_file(tmp_path / "plain_labels.tif", image_path=tmp_path / "top.tif")
    assert list(from_image.columns["touches_info_bar"]) == [True, False]


def test_labels_written_without_confidence_leave_no_earlier_table(tmp_path):
    from napari_nanogan.io.images import read_label_table, write_labels
    from napari_nanogan.measure import measure_file

    a = np.zeros((40, 40), np.uint16)
    a[5:10, 5:10], a[20:30, 20:30] = 1, 2
    write_labels(tmp_path / "x_labels.tif", a, confidence=np.array([0.9, 0.1]))
    assert read_label_table(tmp_path / "x_labels.tif", 2) is not None
    b = np.zeros((40, 40), np.uint16)
    b[1:4, 1:4], b[30:35, 5:10] = 1, 2
    write_labels(tmp_path / "x_labels.tif", b)
    assert read_label_table(tmp_path / "x_labels.tif", 2) is None
    assert "confidence" not in measure_file(tmp_path / "x_labels.tif").columns


def test_a_label_file_keeps_its_own_numbers(tmp_path):
    from napari_nanogan.io.images import write_labels
    from napari_nanogan.measure import measure_file

    labels = np.zeros((60, 60), np.uint32)
    labels[5:10, 5:10], labels[20:30, 20:30], labels[40:50, 40:50] = 7, 9, 40000  # 40000 > 3600 pixels
    write_labels(tmp_path / "n_labels.tif", labels)
    assert list(measure_file(tmp_path / "n_labels.tif").columns["label"]) == [7, 9, 40000]
    binary = (labels > 0).astype(np.uint8) * 255  # a binary mask: its connected parts, numbered
    tifffile.imwrite(tmp_path / "b_m.tif", binary)
    assert list(measure_file(tmp_path / "b_m.tif").columns["label"]) == [1, 2, 3]


def test_grey_labels_as_rgb_with_few_particles_are_not_taken_for_a_binary_mask(tmp_path):
    from napari_nanogan.io.masks import read_mask

    labels = np.zeros((100, 100), np.uint8)  # 3 % foreground: 97 % of pixels are 0
    labels[10:20, 10:20], labels[10:20, 20:30], labels[60:70, 60:70] = 1, 2, 3  # 1 and 2 touch
    Image.fromarray(np.repeat(labels[..., None], 3, -1)).save(tmp_path / "few_rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "few_rgb.png"), labels)


def test_solidity_of_a_label_in_pieces_on_one_line_counts_the_gap():
    labels = np.zeros((10, 10), np.int32)
    labels[2, 2] = labels[2, 4] = 1  # two pixels of one label, one pixel apart: 2 of the 3 on the line
    labels[5, 1:3] = 2
    np.testing.assert_allclose(measure_particles(labels).columns["solidity"], [2 / 3, 1.0])


def test_measure_particles_refuses_a_bad_pixel_size_and_fractional_labels():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6] = 1
    for bad in (-3.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="pixel size"):
            measure_particles(labels, pixel_size_nm=bad)
    with pytest.raises(ValueError, match="whole numbers"):
        measure_particles(labels + 0.5)
    assert list(measure_particles(labels.astype(float)).columns["label"]) == [1]


def test_a_label_file_of_one_particle_keeps_its_number_and_confidence(tmp_path):
    from napari_nanogan.io.images import write_labels
    from napari_nanogan.measure import measure_file

    labels = np.zeros((30, 30), np.uint16)
    labels[5:10, 5:10] = 7
    labels[10:14, 10:14] = 7  # touching the first part at a corner only: still one particle, as numbered
    write_labels(tmp_path / "one_labels.tif", labels, confidence=[0.1] * 6 + [0.95])
    table = measure_file(tmp_path / "one_labels.tif")
    assert list(table.columns["label"]) == [7]
    np.testing.assert_allclose(table.columns["confidence"], [0.95], rtol=1e-6)


def test_an_anti_aliased_binary_mask_zoomed_and_saved_as_rgb_stays_binary(tmp_path):
    from napari_nanogan.io.masks import read_mask

    big = Image.new("L", (800, 800), 0)
    draw = ImageDraw.Draw(big)
    for cx, cy, r in ((200, 200, 120), (550, 300, 150), (300, 600, 100)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    zoomed = big.resize((100, 100), Image.LANCZOS).resize((300, 300), Image.NEAREST)  # edges: 3 x 3 grey blocks
    zoomed.convert("RGB").save(tmp_path / "zoomed_rgb.png")
    assert set(np.unique(read_mask(tmp_path / "zoomed_rgb.png"))) == {0, 1}


def test_a_mask_is_measured_with_the_image_of_its_name(tmp_path, sem_like):
    """``masks/field_m.tif`` without --image: its image ``images/field.tif`` gives the info bar (particles it cuts
    flagged), the intensities and the pixel size, as --image would; before, the pixel size alone."""
    from napari_nanogan.measure import measure_file

    image, labels = sem_like  # the image has a 24-row info bar below the specimen rows the labels cover
    mask = np.zeros(image.shape, np.uint8)
    mask[: labels.shape[0]] = (labels > 0) * 255
    mask[labels.shape[0] - 6 : labels.shape[0] + 3, 100:112] = 255  # an annotation spilling into the bar
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "field.tif", image, resolution=(1e7 / 4.0, 1e7 / 4.0),
                     resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "masks" / "field_m.tif", mask)
    alone = measure_file(tmp_path / "masks" / "field_m.tif")
    given = measure_file(tmp_path / "masks" / "field_m.tif", image_path=tmp_path / "images" / "field.tif")
    assert alone.pixel_size_nm == pytest.approx(4.0) and alone.columns["touches_info_bar"].sum() >= 1
    for column in ("touches_info_bar", "mean_intensity", "ecd_nm", "source_image"):
        assert list(alone.columns[column]) == list(given.columns[column]), column
    tifffile.imwrite(tmp_path / "images" / "field.tif", image[:100])  # an image of another shape: not its image
    other = measure_file(tmp_path / "masks" / "field_m.tif")
    assert "source_image" not in other.columns and not other.columns["touches_info_bar"].any()


def test_the_summary_says_the_pixel_size_each_row_was_measured_with(tmp_path):
    import csv

    from napari_nanogan.cli import main
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((60, 60), np.uint16)
    labels[5:15, 5:15], labels[30:44, 30:44], labels[20:26, 40:50] = 1, 2, 3
    write_labels(tmp_path / "a_labels.tif", labels, pixel_size_nm=2.0)
    write_labels(tmp_path / "b_labels.tif", labels, pixel_size_nm=5.0)
    assert main(["measure", str(tmp_path / "a_labels.tif"), str(tmp_path / "b_labels.tif"),
                 "--out", str(tmp_path / "sizes.csv")]) == 0
    rows = {r["image"]: r for r in csv.DictReader(open(tmp_path / "sizes_summary.csv"))}
    assert float(rows["a_labels.tif"]["pixel_size_nm"]) == 2.0 and float(rows["b_labels.tif"]["pixel_size_nm"]) == 5.0
    assert rows["all"]["pixel_size_nm"] == ""  # two pixel sizes pooled: no one of them
