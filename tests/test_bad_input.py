"""Bad input, class by class, through the command line, the library and the napari reader.

Every case ends in one line naming the file and what to do, a non-zero exit where the run
did not do what was asked, and the good inputs of the same batch still written. Fixtures
are made here (a few KB each); crafted "huge" files declare a size they do not hold.
"""

import os
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanogan._napari import get_reader, read_em_image
from napari_nanogan.cli import main
from napari_nanogan.io.images import ImageReadError, ImageTooLargeError, read_image

ROWS, COLS = 64, 80


def _image(seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(60, 25, (ROWS, COLS)), 0, 255).astype(np.uint8)
    image[20:30, 20:34] = 220  # a particle
    return image.astype(dtype)


def _mask(value=255):
    mask = np.zeros((ROWS, COLS), np.int16)
    mask[10:20, 10:20] = value
    mask[30:44, 40:52] = value
    return mask


def _crafted_tiff(path, height, width):
    """A few hundred bytes declaring height x width (zlib tiles of a 256 x 256 image, tags rewritten)."""
    tifffile.imwrite(path, np.zeros((256, 256), np.uint8), tile=(256, 256), compression="zlib")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(width)
        tif.pages[0].tags["ImageLength"].overwrite(height)
    return path


def _crafted_png(path, height, width):
    """An 8 x 8 PNG whose header (CRC fixed) declares height x width."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _run(capsys, *argv):
    """Exit code, the error lines and all that one ``nanogan`` run said; no traceback ever reaches the user."""
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    return rc, [line for line in captured.err.splitlines() if line.startswith(("error:", "nanogan "))], text


def _one(lines, *words):
    """Exactly one error line holds all ``words``; it names each file at most once."""
    hits = [line for line in lines if all(w in line for w in words)]
    assert len(hits) == 1, (words, lines)
    return hits[0]


# ---------------------------------------------------------------- 1. info bar on wide-range and NaN images
def test_wide_range_and_nan_images_in_one_batch(tmp_path, tiny_checkpoint, capsys):
    tifffile.imwrite(tmp_path / "u32.tif", _image().astype(np.uint32) * np.uint32(16_000_000))
    tifffile.imwrite(tmp_path / "i64.tif", _image().astype(np.int64) * np.int64(2**50) - np.int64(2**62))
    nan = _image().astype(np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    tifffile.imwrite(tmp_path / "good.tif", _image(1))
    out = tmp_path / "out"
    rc, errors, said = _run(capsys, "segment", tmp_path, "--out", out, "--model", tiny_checkpoint)
    assert rc == 1 and "3 of 4 images segmented, 1 failed" in said  # the tally after the batch
    line = _one(errors, "nan.tif", "NaN")
    assert line.count("nan.tif") == 1
    assert len(errors) == 1
    for stem in ("u32", "i64", "good"):
        assert tifffile.imread(out / f"{stem}_labels.tif").shape == (ROWS, COLS)


def test_napari_reader_on_wide_range_and_nan_images(tmp_path):
    nan = _image().astype(np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    tifffile.imwrite(tmp_path / "i64.tif", _image().astype(np.int64) * np.int64(2**50))
    for name in ("nan.tif", "i64.tif"):
        reader = get_reader(str(tmp_path / name))
        assert reader is read_em_image
        (data, kwargs, kind), *_ = reader(str(tmp_path / name))
        assert kind == "image" and data.shape == (ROWS, COLS)


def test_memory_error_of_one_image_does_not_stop_the_batch(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import napari_nanogan.segmentation.pipeline as pipeline

    real = pipeline.segment

    def hungry(image, *args, **kwargs):
        if image[0, 0] == 7:
            raise MemoryError
        return real(image, *args, **kwargs)

    monkeypatch.setattr(pipeline, "segment", hungry)
    big = _image()
    big[0, 0] = 7
    tifffile.imwrite(tmp_path / "a_big.tif", big)
    tifffile.imwrite(tmp_path / "b_good.tif", _image(1))
    rc, errors, _ = _run(capsys, "segment", tmp_path, "--out", tmp_path / "out", "--model", tiny_checkpoint)
    assert rc == 1
    _one(errors, "a_big.tif", "not enough memory")
    assert (tmp_path / "out" / "b_good_labels.tif").is_file()


# ---------------------------------------------------------------- 2. the pixel limit, before decoding
@pytest.mark.parametrize("make,name", [(_crafted_tiff, "huge.tif"), (_crafted_png, "huge.png")])
def test_crafted_huge_files_are_refused_before_decoding(tmp_path, make, name):
    path = make(tmp_path / name, 100_000 if name.endswith(".tif") else 30_000, 100_000 if name.endswith(".tif") else 30_000)
    assert path.stat().st_size < 2000
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError, match="refused before decoding") as info:
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2 and peak < 20 * 2**20  # nothing near the declared 9.3 GiB
    message = str(info.value)
    assert "\n" not in message and name in message and "NANOGAN_MAX_PIXELS" in message and "nanogan segment montage.zarr" in message


def test_huge_file_in_a_batch_through_cli_and_napari(tmp_path, tiny_checkpoint, capsys):
    _crafted_tiff(tmp_path / "montage.tif", 30_000, 30_000)
    tifffile.imwrite(tmp_path / "good.tif", _image())
    rc, errors, _ = _run(capsys, "segment", tmp_path, "--out", tmp_path / "out", "--model", tiny_checkpoint)
    assert rc == 1 and (tmp_path / "out" / "good_labels.tif").is_file()
    _one(errors, "montage.tif", "NANOGAN_MAX_PIXELS")
    # napari: the reader claims the file (no other reader should try to decode it) and refuses it in one line
    reader = get_reader(str(tmp_path / "montage.tif"))
    with pytest.raises(ImageReadError, match="over the limit") as info:
        reader(str(tmp_path / "montage.tif"))
    assert "\n" not in str(info.value)


def test_huge_mask_is_refused_too(tmp_path, tiny_generator_checkpoint, capsys):
    _crafted_tiff(tmp_path / "huge_mask.tif", 100_000, 100_000)
    rc, errors, _ = _run(capsys, "synthesize", tmp_path / "huge_mask.tif", "--out", tmp_path / "out",
                         "--model", tiny_generator_checkpoint)
    assert rc == 1
    _one(errors, "huge_mask.tif", "over the limit")


# ---------------------------------------------------------------- 3. models
def test_model_errors_are_one_line(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, capsys, monkeypatch):
    import torch

    from napari_nanogan.models.registry import USER_MODELS_ENV

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo PAYLOAD-RAN",))

    monkeypatch.setenv(USER_MODELS_ENV, str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    tifffile.imwrite(tmp_path / "a.tif", _image())
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"format_version": 1, "state_dict": Payload()}, tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04junk" * 10)
    cases = [
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "o"], "empty.pt", "the file is empty"),
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "o"], "evil.pt", "holds Python objects"),
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "o"], "junk.pt", "not a PyTorch checkpoint"),
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "o"], "nope", "available: "),
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "o"], "../tiny", "not a model name"),
        (["synthesize", tmp_path / "a.tif", "--out", tmp_path / "o"], tiny_checkpoint, "not a 'generator'"),
        (["export", "--masks", tmp_path / "a.tif", "--out", tmp_path / "e"], "empty.pt", "the file is empty"),
        (["demo", "--out", tmp_path / "d"], tmp_path / "models", "is a folder"),
    ]
    for argv, model, reason in cases:
        model_arg = str(tmp_path / model) if str(model).endswith(".pt") and "/" not in str(model) else str(model)
        rc, errors, err = _run(capsys, *argv, "--model", model_arg)
        assert rc == 2, (argv, model, err)
        assert len(errors) == 1, err
        assert reason in errors[0] and "weights_only" not in errors[0] and "PAYLOAD-RAN" not in err


# ---------------------------------------------------------------- 4. two inputs, one output name
def test_same_stem_never_overwrites(tmp_path, tiny_checkpoint, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "x.tif", _image(ord(folder)))
    Image.fromarray(_image(5)).save(tmp_path / "a" / "y.png")
    tifffile.imwrite(tmp_path / "a" / "y.tif", _image(6))
    out = tmp_path / "out"
    rc, errors, _ = _run(capsys, "segment", tmp_path / "a", tmp_path / "b", "--out", out, "--model", tiny_checkpoint)
    assert rc == 1
    _one(errors, str(tmp_path / "b" / "x.tif"), "would write the same x_labels.tif")
    _one(errors, "y.tif", "would write the same y_labels.tif")
    assert sorted(p.name for p in out.glob("*.tif")) == ["x_labels.tif", "y_labels.tif"]
    # the same file named twice is segmented once, without complaint
    rc, errors, _ = _run(capsys, "segment", tmp_path / "b" / "x.tif", tmp_path / "b", "--out", tmp_path / "o2",
                         "--model", tiny_checkpoint)
    assert rc == 0 and not errors


def test_rerun_into_the_input_folder_leaves_earlier_results_out(tmp_path, tiny_checkpoint, tiny_generator_checkpoint,
                                                                capsys):
    tifffile.imwrite(tmp_path / "x.tif", _image())
    for _ in range(2):
        rc, errors, err = _run(capsys, "segment", tmp_path, "--out", tmp_path, "--model", tiny_checkpoint)
        assert rc == 0 and not errors
    assert "left out 1 earlier result(s)" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["x.tif", "x_labels.csv", "x_labels.tif"]
    masks = tmp_path / "masks"
    masks.mkdir()
    tifffile.imwrite(masks / "m.tif", _mask().astype(np.uint8))
    for _ in range(2):
        rc, errors, err = _run(capsys, "synthesize", masks, "--out", masks, "--n", "2", "--model",
                               tiny_generator_checkpoint)
        assert rc == 0 and not errors
    assert "left out 2 earlier result(s)" in err
    assert sorted(p.name for p in masks.iterdir()) == ["m.tif", "m_0.tif", "m_1.tif"]


# ---------------------------------------------------------------- 6. fine-tuning
def test_finetune_refuses_before_training(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import napari_nanogan.training.finetune as ft

    monkeypatch.setattr(ft, "finetune", lambda *a, **k: pytest.fail("training started"))
    tifffile.imwrite(tmp_path / "a.tif", np.tile(_image(), (2, 2)))
    tifffile.imwrite(tmp_path / "m.tif", np.tile(_mask(), (2, 2)).astype(np.uint8))
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((2 * ROWS, 2 * COLS), np.uint8))
    tifffile.imwrite(tmp_path / "small.tif", _image()[:40])
    tifffile.imwrite(tmp_path / "small_m.tif", _mask()[:40].astype(np.uint8))
    base = ["--base-segmenter", tiny_checkpoint]
    cases = [
        (["a.tif"], ["m.tif"], tmp_path, base, "is a folder"),
        (["a.tif"], ["empty.tif"], tmp_path / "x.pt", base, "the mask is empty"),
        (["small.tif"], ["small_m.tif"], tmp_path / "x.pt", base, "too small"),
        (["a.tif"], ["m.tif"], tmp_path / "x.pt", ["--base-segmenter", "nope"], "available"),
        (["a.tif"], ["m.tif"], tmp_path / "x.pt", [*base, "--base-generator", "nope"], "no generator named 'nope'"),
    ]
    for images, masks, out, extra, reason in cases:
        rc, errors, err = _run(capsys, "finetune", "--images", *[tmp_path / i for i in images],
                               "--masks", *[tmp_path / m for m in masks], "--out", out, *extra)
        assert rc == 2 and len(errors) == 1 and reason in errors[0], (reason, err)


# ---------------------------------------------------------------- 7. numbers
@pytest.mark.parametrize("argv,flag", [
    (["synthesize", "m.tif", "--out", "o", "--n", "-1"], "--n"),
    (["export", "--masks", "m.tif", "--out", "o", "--n", "0"], "--n"),
    (["export", "--masks", "m.tif", "--out", "o", "--pixel-size", "-1"], "--pixel-size"),
    (["measure", "m.tif", "--out", "o.csv", "--pixel-size", "-3"], "--pixel-size"),
    (["measure", "m.tif", "--out", "o.csv", "--pixel-size", "nan"], "--pixel-size"),
    (["synthesize", "m.tif", "--out", "o", "--seed", "-1"], "--seed"),
    (["export", "--masks", "m.tif", "--out", "o", "--seed", str(2**64)], "--seed"),
    (["segment", "a.tif", "--out", "o", "--diameter-nm", "-5"], "--diameter-nm"),
    (["segment", "a.tif", "--out", "o", "--diameter", "-5"], "--diameter"),
    (["segment", "a.tif", "--out", "o", "--diameter", "inf"], "--diameter"),
    (["segment", "a.tif", "--out", "o", "--tile", "0"], "--tile"),
])
def test_numbers_are_checked_and_name_their_flag(tmp_path, capsys, argv, flag):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_negative_pixel_size_in_a_sidecar_is_not_trusted(tmp_path, capsys, caplog):
    import csv

    tifffile.imwrite(tmp_path / "lab.tif", _mask(1).astype(np.uint16))
    tifffile.imwrite(tmp_path / "img.tif", _image())
    (tmp_path / "img.txt").write_text("[SemImageFile]\nPixelSize=-5\n")
    rc, errors, err = _run(capsys, "measure", tmp_path / "lab.tif", "--image", tmp_path / "img.tif",
                           "--out", tmp_path / "t.csv")
    assert rc == 0 and "lengths in pixels" in err
    assert [r.getMessage() for r in caplog.records if "img.txt" in r.getMessage()] == [
        f"{tmp_path / 'img.txt'}: PixelSize=-5 is not a positive length; ignored (pass the pixel size explicitly)"]
    summary = next(csv.DictReader(open(tmp_path / "t_summary.csv")))
    assert summary["unit"] == "px" and float(summary["D50"]) > 0


def test_measure_says_why_it_has_nothing_to_measure(tmp_path, capsys):
    """A folder without label images and a zarr labels store each get a line, not a silent exit."""
    (tmp_path / "empty").mkdir()
    rc, errors, _ = _run(capsys, "measure", tmp_path / "empty", "--out", tmp_path / "t.csv")
    assert rc == 2 and "no label images found" in _one(errors, str(tmp_path / "empty"))
    (tmp_path / "big_labels.zarr").mkdir()
    rc, errors, _ = _run(capsys, "measure", tmp_path / "big_labels.zarr", "--out", tmp_path / "t.csv")
    assert rc == 2 and "not zarr stores" in _one(errors, "big_labels.zarr")
    assert not (tmp_path / "t.csv").exists()


# ---------------------------------------------------------------- 8. one mask validator for all commands
def test_negative_labels_are_refused_by_every_command(tmp_path, tiny_generator_checkpoint, capsys):
    bad = _mask(3).astype(np.int16)
    bad[0, 0] = -2
    tifffile.imwrite(tmp_path / "bad.tif", bad)
    tifffile.imwrite(tmp_path / "good.tif", _mask(1).astype(np.uint8))
    masks = [tmp_path / "bad.tif", tmp_path / "good.tif"]
    model = ["--model", tiny_generator_checkpoint]
    runs = {
        "measure": (["measure", *masks, "--out", tmp_path / "m.csv"], tmp_path / "m.csv"),
        "synthesize": (["synthesize", *masks, "--out", tmp_path / "s", *model], tmp_path / "s" / "good_0.tif"),
        "export": (["export", "--masks", *masks, "--out", tmp_path / "e", *model], tmp_path / "e" / "masks" / "good_0.tif"),
    }
    for command, (argv, written) in runs.items():
        rc, errors, err = _run(capsys, *argv)
        assert rc == 1, (command, err)
        line = _one(errors, "bad.tif", "mask labels must be >= 0")
        assert line.count("bad.tif") == 1 and len(errors) == 1, (command, errors)
        assert written.is_file(), command


# ---------------------------------------------------------------- 9. output paths
def test_output_paths_are_checked_before_any_work(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import tempfile

    tifffile.imwrite(tmp_path / "a.tif", _image())
    tifffile.imwrite(tmp_path / "lab.tif", _mask(1).astype(np.uint16))
    (tmp_path / "file").write_text("mine")
    (tmp_path / "folder.csv").mkdir()
    cases = [
        (["segment", tmp_path / "a.tif", "--out", tmp_path / "file", "--model", tiny_checkpoint], "not a folder"),
        (["synthesize", tmp_path / "lab.tif", "--out", tmp_path / "file"], "not a folder"),
        (["export", "--masks", tmp_path / "lab.tif", "--out", tmp_path / "file"], "not a folder"),
        (["measure", tmp_path / "lab.tif", "--out", tmp_path / "folder.csv"], "is a folder"),
    ]
    for argv, reason in cases:
        rc, errors, err = _run(capsys, *argv)
        assert rc == 2 and len(errors) == 1 and reason in errors[0], err
    assert (tmp_path / "file").read_text() == "mine"

    def read_only(*args, **kwargs):  # as a read-only folder answers (the tests may run as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    rc, errors, err = _run(capsys, "segment", tmp_path / "a.tif", "--out", tmp_path / "ro", "--model", tiny_checkpoint)
    assert rc == 2 and len(errors) == 1 and "cannot write there (Permission denied)" in errors[0]


def test_no_output_folder_is_left_when_every_input_fails(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, capsys):
    (tmp_path / "corrupt.tif").write_bytes(b"not an image at all")
    missing = tmp_path / "missing.tif"
    runs = {
        "segment": ["segment", tmp_path / "corrupt.tif", missing, "--out", tmp_path / "new" / "seg",
                    "--model", tiny_checkpoint],
        "measure": ["measure", tmp_path / "corrupt.tif", missing, "--out", tmp_path / "new" / "sizes" / "m.csv"],
        "synthesize": ["synthesize", tmp_path / "corrupt.tif", missing, "--out", tmp_path / "new" / "syn",
                       "--model", tiny_generator_checkpoint],
        "export": ["export", "--masks", tmp_path / "corrupt.tif", missing, "--out", tmp_path / "new" / "pairs",
                   "--model", tiny_generator_checkpoint],
    }
    for command, argv in runs.items():
        rc, errors, err = _run(capsys, *argv)
        assert rc == 1 and len(errors) == 2, (command, err)
        assert not (tmp_path / "new").exists(), (command, sorted(p.name for p in (tmp_path / "new").rglob("*")))
    # a folder that was there is kept, empty or not, and one a run wrote into too
    (tmp_path / "mine").mkdir()
    assert _run(capsys, "segment", tmp_path / "corrupt.tif", "--out", tmp_path / "mine", "--model", tiny_checkpoint)[0] == 1
    assert (tmp_path / "mine").is_dir()
    tifffile.imwrite(tmp_path / "good.tif", _image())
    assert _run(capsys, "segment", tmp_path / "corrupt.tif", tmp_path / "good.tif", "--out", tmp_path / "new" / "seg",
                "--model", tiny_checkpoint)[0] == 1
    assert (tmp_path / "new" / "seg" / "good_labels.tif").is_file()


# ---------------------------------------------------------------- 10. the smaller ones
def test_paths_that_are_not_image_files(tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "loop.tif").symlink_to(tmp_path / "loop.tif")
    (tmp_path / "dir.tif").mkdir()
    tifffile.imwrite(tmp_path / "good.tif", _image())
    rc, errors, _ = _run(capsys, "segment", tmp_path / "loop.tif", tmp_path / "dir.tif" / "missing.tif",
                         tmp_path / "good.tif", "--out", tmp_path / "out", "--model", tiny_checkpoint)
    assert rc == 1 and len(errors) == 2
    _one(errors, "loop.tif", "symbolic link loop")
    _one(errors, "missing.tif", "no such file")
    assert (tmp_path / "out" / "good_labels.tif").is_file()
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path / "dir.tif")
    assert get_reader(str(tmp_path / "dir.tif")) is None


def test_progress_bar_closed_when_an_image_fails(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import napari_nanogan.cli.segment as cli_segment
    import napari_nanogan.segmentation.pipeline as segmentation

    bars = []

    class Bar:
        n, total = 0, 1
        closed = False

        def update(self, d):
            self.n += d

        def close(self):
            self.closed = True

    monkeypatch.setattr(cli_segment, "progress_bar", lambda *a, **k: bars.append(Bar()) or bars[-1])
    monkeypatch.setattr(segmentation, "segment", lambda *a, **k: (_ for _ in ()).throw(ValueError("tile trouble")))
    tifffile.imwrite(tmp_path / "a.tif", _image())
    rc, errors, _ = _run(capsys, "segment", tmp_path / "a.tif", "--out", tmp_path / "o", "--model", tiny_checkpoint)
    assert rc == 1 and bars and all(b.closed for b in bars)
    assert _one(errors, "a.tif", "tile trouble").count("a.tif") == 1


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    import napari_nanogan.segmentation as segmentation
    import napari_nanogan.segmentation.pipeline as pipeline

    tifffile.imwrite(tmp_path / "a.tif", _image())
    argv = ["segment", tmp_path / "a.tif", "--out", tmp_path / "o", "--model", tiny_checkpoint]
    # inside the per-input handling
    monkeypatch.setattr(pipeline, "segment", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    rc, errors, _ = _run(capsys, *argv)
    assert rc == 1 and "boom (RuntimeError; run with --debug for details)" in _one(errors, "a.tif")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", *map(str, argv)])
    # outside it: the top-level handler
    monkeypatch.setattr(segmentation, "load_segmenter", lambda *a, **k: (_ for _ in ()).throw(TypeError("odd")))
    rc, errors, _ = _run(capsys, *argv)
    assert rc == 1 and errors == ["nanogan segment: unexpected error: odd (TypeError); run with --debug for details"]
    with pytest.raises(TypeError, match="odd"):
        main(["--debug", *map(str, argv)])


@pytest.mark.parametrize("name", ["empty.tif", "empty.png"])
def test_an_empty_file_is_called_empty(tmp_path, name):
    """Not tifffile's `not a TIFF file: header=b''`."""
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"the file is empty \(0 bytes\)"):
        read_image(tmp_path / name)


@pytest.mark.parametrize("value, dtype", [(0, np.uint8), (40000, np.uint16), (0.5, np.float32)])
def test_a_single_grey_level_is_no_particles_and_no_size(tiny_checkpoint, value, dtype):
    """A blank acquisition was "estimated 6 px" and enlarged twice for small particles."""
    from napari_nanogan.segmentation import load_segmenter, segment

    result = segment(np.full((200, 300), value, dtype), load_segmenter(str(tiny_checkpoint)), diameter="auto")
    assert result.flat and result.count == 0 and result.diameter_px is None and result.labels.shape == (200, 300)
    assert result.describe() == "0 particles, the image is a single grey level"


def test_training_patches_and_thread_counts_out_of_range_are_refused_at_once(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rc, errors, _ = _run(capsys, "train", "--pairs", tmp_path, "--out", tmp_path / "m.pt", "--patch-size", "100000")
    assert rc == 2 and not (tmp_path / "m.pt.run").exists()
    _one(errors, "--patch-size must be from 32 to 2048")
    for flag in ("--threads", "--workers"):
        with pytest.raises(SystemExit) as exit_:
            main(["segment", str(tmp_path), "--out", str(tmp_path / "out"), flag, "-1"])
        assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_train_on_pairs_of_empty_masks_only_is_refused(tmp_path, capsys):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for k in range(2):
        tifffile.imwrite(tmp_path / "images" / f"f{k}.tif", _image(k))
        tifffile.imwrite(tmp_path / "masks" / f"f{k}.tif", np.zeros((ROWS, COLS), np.uint16))
    rc, errors, _ = _run(capsys, "train", "--pairs", tmp_path, "--out", tmp_path / "m.pt", "--steps", "1")
    assert rc == 2 and not (tmp_path / "m.pt").exists()
    _one(errors, "every mask in", "is empty")


def test_finetune_names_an_image_it_cannot_use_by_its_path(tmp_path, capsys):
    image = _image(dtype=np.float32)
    image[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "field.tif", image)
    tifffile.imwrite(tmp_path / "field_mask.tif", _mask())
    rc, errors, _ = _run(capsys, "finetune", "--images", tmp_path / "field.tif", "--masks", tmp_path / "field_mask.tif",
                         "--out", tmp_path / "m.pt")
    assert rc == 2 and not (tmp_path / "m.pt").exists()
    _one(errors, f"{tmp_path / 'field.tif'}: the image contains NaN")
