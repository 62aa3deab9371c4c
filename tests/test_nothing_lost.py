"""What is on disk stays: a command never writes over its own inputs or a file it did not make, a write that
fails leaves the earlier result whole, and a run folder is never resumed with other settings."""

import errno

import numpy as np
import pytest
import tifffile

from napari_nanogan.cli import main
from napari_nanogan.io.images import read_label_table, write_labels


def _labels():
    labels = np.zeros((48, 64), np.uint16)
    labels[5:15, 5:15], labels[25:40, 30:45] = 1, 2
    return labels


def _image_and_labels(folder):
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(60, 10, (48, 64)), 0, 255).astype(np.uint8)
    image[_labels() > 0] = 200
    folder.mkdir(exist_ok=True)
    tifffile.imwrite(folder / "field.tif", image)
    write_labels(folder / "field_labels.tif", _labels(), pixel_size_nm=2.0, confidence=np.array([0.9, 0.6]))
    return folder / "field.tif", folder / "field_labels.tif"


def test_measure_never_writes_over_its_inputs_nor_outside_a_csv(tmp_path, capsys):
    image, labels = _image_and_labels(tmp_path)
    kept = labels.read_bytes()
    for out in (labels, image, tmp_path / "sizes.png"):
        assert main(["measure", str(labels), "--image", str(image), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("give a name ending in .csv") == 3
    assert labels.read_bytes() == kept and not (tmp_path / "sizes.png").exists()
    summary_named_as_input = tmp_path / "x_summary.csv"  # the summary beside --out would replace an input too
    summary_named_as_input.write_bytes(kept)
    assert main(["measure", str(summary_named_as_input), "--out", str(tmp_path / "x.csv")]) == 2
    assert "is one of the inputs" in capsys.readouterr().err and summary_named_as_input.read_bytes() == kept
    (tmp_path / ".sizes.csv.123.tmp").write_text("half a table")  # what a killed run left
    assert main(["measure", str(labels), "--out", str(tmp_path / "sizes.csv")]) == 0
    assert not list(tmp_path.glob(".sizes.csv.*.tmp"))


def test_segment_leaves_an_annotation_of_its_output_name_alone(tmp_path, tiny_checkpoint, capsys):
    image, _ = _image_and_labels(tmp_path / "a")
    annotation = tmp_path / "a" / "field_labels.tif"
    tifffile.imwrite(annotation, _labels())  # drawn by hand, saved under the name segment would write
    annotation.with_suffix(".csv").unlink()
    kept = annotation.read_bytes()
    assert main(["segment", str(image), "--out", str(tmp_path / "a"), "--model", str(tiny_checkpoint)]) == 1
    assert "was not written by nanogan segment" in capsys.readouterr().err and annotation.read_bytes() == kept
    out = tmp_path / "b"
    for _ in range(2):  # its own earlier result is replaced, as a rerun does
        assert main(["segment", str(image), "--out", str(out), "--model", str(tiny_checkpoint)]) == 0
    legacy = out / "field_labels.tif"  # labels written before they were marked: known by their table
    tifffile.imwrite(legacy, _labels())
    assert main(["segment", str(image), "--out", str(out), "--model", str(tiny_checkpoint)]) == 0


def test_a_write_that_fails_keeps_the_earlier_labels_and_table(tmp_path, monkeypatch):
    path = tmp_path / "x_labels.tif"
    write_labels(path, _labels(), pixel_size_nm=2.0, confidence=np.array([0.9, 0.6]))
    before = path.read_bytes(), path.with_suffix(".csv").read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full_disk)
    for confidence in (np.array([0.5, 0.5, 0.5]), None):
        with pytest.raises(OSError, match="cannot write .*x_labels.tif: No space left"):
            write_labels(path, _labels() * 0 + 3, confidence=confidence)
        assert (path.read_bytes(), path.with_suffix(".csv").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_labels.csv", "x_labels.tif"]  # no temporary left


def test_pixel_sizes_a_tiff_cannot_hold_are_refused_before_any_work(tmp_path, capsys):
    image, _ = _image_and_labels(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["segment", str(image), "--out", str(tmp_path / "out"), "--pixel-size", "0.001"])
    assert exit_.value.code == 2 and "cannot be recorded" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    write_labels(tmp_path / "fine.tif", _labels(), pixel_size_nm=0.003)  # the finest a TIFF records


def test_a_label_table_is_read_within_its_labels_and_a_broken_one_is_named(tmp_path, capsys):
    _, labels = _image_and_labels(tmp_path)
    table = labels.with_suffix(".csv")
    table.write_text("label,confidence\n1,0.9\n1000000000,0.3\n")  # a label far beyond the image's: left out
    confidence = read_label_table(labels, 2)
    assert confidence.shape == (2,) and confidence[0] == pytest.approx(0.9) and np.isnan(confidence[1])
    for row in ("0,0.1", "1,abc", "x,0.5"):
        table.write_text(f"label,confidence\n{row}\n")
        with pytest.raises(ValueError, match="x_labels.csv, line 2|field_labels.csv, line 2"):
            read_label_table(labels, 2)
        assert main(["measure", str(labels), "--out", str(tmp_path / "s.csv")]) == 1
        assert "field_labels.csv, line 2" in capsys.readouterr().err
    from napari_nanogan._napari import read_em_image

    with pytest.warns(UserWarning, match="open without their confidence"):
        (data, kwargs, kind), = read_em_image(str(labels))
    assert kind == "labels" and "confidence" not in kwargs.get("features", {})


def test_signed_images_segment_and_grey_ones_are_not_masks(tmp_path, tiny_checkpoint, capsys):
    rng = np.random.default_rng(1)
    grey = np.clip(rng.normal(60, 15, (96, 96)), 0, 255)
    grey[30:50, 30:50] += 120
    tifffile.imwrite(tmp_path / "int8.tif", (np.clip(grey, 0, 255) - 128).astype(np.int8))
    tifffile.imwrite(tmp_path / "int16.tif", (np.clip(grey, 0, 255) / 255 * 60000 - 30000).astype(np.int16))
    assert main(["segment", str(tmp_path / "int8.tif"), str(tmp_path / "int16.tif"), "--out", str(tmp_path / "out"),
                 "--model", str(tiny_checkpoint)]) == 0
    dark = (np.clip(grey, 0, 255) // 8).astype(np.uint16)  # a dark 16-bit frame: 30 grey levels in specks
    tifffile.imwrite(tmp_path / "dark_mask.tif", dark)
    assert main(["measure", str(tmp_path / "dark_mask.tif"), "--out", str(tmp_path / "s.csv")]) == 1
    assert "specks" in capsys.readouterr().err
    reused = np.zeros((96, 96), np.uint8)  # labels coloured with 3 values reused for particles apart: particles
    for k, (r, c) in enumerate([(10, 10), (10, 60), (60, 10), (60, 60), (35, 35), (80, 80)]):
        reused[r:r + 9, c:c + 9] = k % 3 + 1
    tifffile.imwrite(tmp_path / "colours_mask.tif", reused)
    assert main(["measure", str(tmp_path / "colours_mask.tif"), "--out", str(tmp_path / "c.csv")]) == 0


def test_inputs_of_one_name_take_the_microscopes_file_first(tmp_path, tiny_checkpoint, capsys):
    from PIL import Image

    image, _ = _image_and_labels(tmp_path / "in")
    Image.fromarray(tifffile.imread(image)).save(tmp_path / "in" / "field.jpg")
    (tmp_path / "in" / "field_labels.tif").unlink()
    (tmp_path / "in" / "field_labels.csv").unlink()
    assert main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "field.jpg: would write the same field_labels.tif as" in err and "field.tif, which is taken" in err


def test_measure_says_which_pixel_size_it_takes_when_labels_and_image_disagree(tmp_path):
    from napari_nanogan.measure import measure_file

    image, labels = _image_and_labels(tmp_path)  # labels at 2 nm a pixel
    tifffile.imwrite(image, tifffile.imread(image), resolution=(1e7 / 5.0, 1e7 / 5.0), resolutionunit="CENTIMETER")
    with pytest.warns(UserWarning, match="segmented at 2 nm a pixel, its image field.tif records 5 nm: 2 nm is used"):
        table = measure_file(labels, image_path=image)
    assert table.pixel_size_nm == pytest.approx(2.0)
    assert measure_file(labels, image_path=image, pixel_size_nm=5.0).pixel_size_nm == pytest.approx(5.0)


def test_an_inverted_binary_mask_is_measured_with_a_question(tmp_path):
    from napari_nanogan.measure import measure_file

    mask = np.full((48, 64), 255, np.uint8)
    mask[5:15, 5:15] = mask[25:40, 30:45] = 0  # particles drawn black on white
    tifffile.imwrite(tmp_path / "a_mask.tif", mask)
    with pytest.warns(UserWarning, match="is the mask inverted"):
        measure_file(tmp_path / "a_mask.tif")
    tifffile.imwrite(tmp_path / "b_mask.tif", 255 - mask)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(measure_file(tmp_path / "b_mask.tif")) == 2
