import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from conftest import requires_shipped
from napari_nanogan.cli import main
from napari_nanogan.io.images import labels_pixel_size_nm


def test_segment_contract(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "a.tif", image)
    Image.fromarray(image).save(src / "b.png")
    tifffile.imwrite(tmp_path / "c16.tif", (image.astype(np.uint16) * 257))
    out = tmp_path / "out"
    rc = main(["segment", str(src), str(tmp_path / "c16.tif"), "--out", str(out), "--model", str(tiny_checkpoint), "--tile", "128"])
    assert rc == 0
    for stem in ("a", "b", "c16"):
        labels = tifffile.imread(out / f"{stem}_labels.tif")
        assert labels.shape == image.shape and labels.dtype in (np.uint16, np.uint32)
    said = capsys.readouterr()
    results = said.out.splitlines()  # one result line per input, on stdout
    assert len(results) == 3 and all(" particles, " in line or " particle, " in line for line in results)
    assert said.err.count("has no size model: images are segmented at their own scale") == 1  # said once, not per image


def test_segment_names_the_file_a_warning_is_about_on_a_line_of_its_own(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    for stem in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{stem}.tif", image)
    rc = main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path / "out"),
               "--model", str(tiny_checkpoint), "--tile", "128", "--diameter", "400"])  # over 8 times the model's
    assert rc == 0
    lines = capsys.readouterr().err.splitlines()
    for stem in ("a", "b"):
        note = [line for line in lines if line.startswith(f"warning: {stem}.tif: a particle diameter of 400 px")]
        assert len(note) == 1 and "made 8 times smaller, no more" in note[0]


def test_segment_leaves_out_labels_masks_and_result_pictures_found_in_a_folder(tmp_path, tiny_checkpoint, sem_like,
                                                                               capsys):
    """A folder holding an image with its annotation and an earlier run's results (into another --out): only the
    image is segmented; the same files named on the command line are taken as asked."""
    image, truth = sem_like
    folder = tmp_path / "mixed"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", image)
    assert main(["segment", str(folder / "a.tif"), "--out", str(tmp_path / "first"), "--model", str(tiny_checkpoint),
                 "--overlay"]) == 0
    for name in ("a_labels.tif", "a_labels.csv", "a_overlay.png"):
        (folder / name).write_bytes((tmp_path / "first" / name).read_bytes())
    (folder / "renamed.tif").write_bytes((tmp_path / "first" / "a_labels.tif").read_bytes())  # still marked as labels
    Image.fromarray((truth > 0).astype(np.uint8) * 255).save(folder / "a_mask.png")
    Image.fromarray(image).save(folder / "b_histogram.png")
    capsys.readouterr()
    assert main(["segment", str(folder), "--out", str(tmp_path / "second"), "--model", str(tiny_checkpoint)]) == 0
    captured = capsys.readouterr()
    assert "left out 5 file(s) that are labels, masks or pictures of results" in captured.err
    assert sorted(p.name for p in (tmp_path / "second").glob("*.tif")) == ["a_labels.tif"]
    assert main(["segment", str(folder / "a_mask.png"), str(folder), "--out", str(tmp_path / "third"), "--model",
                 str(tiny_checkpoint)]) == 0  # named: segmented, as asked, even with its folder given too
    assert (tmp_path / "third" / "a_mask_labels.tif").exists()
    (folder / "c_OVERLAY.PNG").write_bytes((folder / "b_histogram.png").read_bytes())  # whatever the case
    assert main(["segment", str(folder), "--out", str(tmp_path / "fourth"), "--model", str(tiny_checkpoint)]) == 0
    assert "left out 6 file(s)" in capsys.readouterr().err


def test_segment_takes_a_zarr_store_named_on_the_command_line_whatever_its_name(tmp_path, tiny_checkpoint, sem_like,
                                                                               capsys):
    from napari_nanogan.io.omezarr import write_ome_zarr

    write_ome_zarr(tmp_path / "scan_labels.zarr", sem_like[0], chunk=128)  # named like a result, but named
    assert main(["segment", str(tmp_path / "scan_labels.zarr"), "--out", str(tmp_path / "o"), "--model",
                 str(tiny_checkpoint), "--tile", "128"]) == 0
    assert "left out" not in capsys.readouterr().err and (tmp_path / "o" / "scan_labels_labels.zarr").is_dir()


def test_segment_says_where_an_input_folder_holds_images_only_in_a_sub_folder(tmp_path, tiny_checkpoint, sem_like,
                                                                            capsys):
    (tmp_path / "data" / "images").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "data" / "images" / "a.tif", sem_like[0])
    for other in ("labels", ".ipynb_checkpoints"):  # labels only, and a hidden folder: not named
        (tmp_path / "data" / other).mkdir()
    tifffile.imwrite(tmp_path / "data" / ".ipynb_checkpoints" / "a.tif", sem_like[0])
    tifffile.imwrite(tmp_path / "data" / "labels" / "a_labels.tif", sem_like[1].astype(np.uint16))
    assert main(["segment", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "no input images found" in err and f"give {tmp_path / 'data' / 'images'} itself" in err


def test_segment_overlay_only_when_asked(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    tifffile.imwrite(tmp_path / "a.tif", image)
    for flags, out in (([], tmp_path / "plain"), (["--overlay"], tmp_path / "with")):
        assert main(["segment", str(tmp_path / "a.tif"), "--out", str(out), "--model", str(tiny_checkpoint), *flags]) == 0
    assert not (tmp_path / "plain" / "a_overlay.png").exists()
    picture = np.asarray(Image.open(tmp_path / "with" / "a_overlay.png"))
    assert picture.shape[1:] == (image.shape[1], 3) and picture.dtype == np.uint8
    assert picture.shape[0] > image.shape[0]  # the caption's strip below the image
    picture = picture[: image.shape[0]]
    labels = tifffile.imread(tmp_path / "with" / "a_labels.tif")
    assert labels.max() > 0
    grey = picture[..., 0] == picture[..., 1]
    assert not grey[labels > 0].all() and grey[labels == 0].mean() > 0.99  # particles coloured, background grey
    assert "a_overlay.png" in capsys.readouterr().out
    # the overlays are no inputs: neither of a rerun into the same folder, nor of measure on it
    assert main(["segment", str(tmp_path / "with"), "--out", str(tmp_path / "with"), "--model", str(tiny_checkpoint),
                 "--overlay"]) == 2  # only earlier results there: no input images
    assert "left out 2 earlier result(s)" in capsys.readouterr().err
    assert main(["measure", str(tmp_path / "with"), "--out", str(tmp_path / "sizes.csv")]) == 0
    assert "left out 1 overlay picture(s)" in capsys.readouterr().err
    import csv

    rows = list(csv.DictReader(open(tmp_path / "sizes.csv")))
    assert {r["image"] for r in rows} == {"a_labels.tif"} and "source_image" not in rows[0]
    # with --image, the image measured beside the labels is named in its own column
    assert main(["measure", str(tmp_path / "with" / "a_labels.tif"), "--image", str(tmp_path / "a.tif"),
                 "--out", str(tmp_path / "sizes2.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "sizes2.csv")))
    assert {(r["image"], r["source_image"]) for r in rows} == {("a_labels.tif", "a.tif")}


def test_a_misspelt_option_shows_the_commands_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["segment", "x.png", "--out", "o", "--diamter", "20"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: nanogan segment") and "unrecognized arguments: --diamter 20" in err
    with pytest.raises(SystemExit):  # a misspelt option before the command is the top level's
        main(["--debgu", "segment", "x.png", "--out", "o"])
    err = capsys.readouterr().err
    assert err.startswith("usage: nanogan [") and "unrecognized arguments: --debgu" in err
    for bad in ("merge_interior=nan", "fg_threshold=2", "min_area=-1", "bogus=1"):
        with pytest.raises(SystemExit):
            main(["tune", "--model", "m.pt", "--out", "o.pt", "--set", bad])
        assert "--set" in capsys.readouterr().err


def test_segment_bad_inputs_reported_and_others_processed(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, image)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 definitely not a tiff")
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((4, 32, 32, 6), np.uint8))
    out = tmp_path / "out"
    rc = main(["segment", str(corrupt), str(stack), str(good), str(tmp_path / "missing.png"), "--out", str(out),
               "--model", str(tiny_checkpoint), "--tile", "128"])
    assert rc != 0
    assert (out / "good_labels.tif").is_file()
    assert not (out / "corrupt_labels.tif").exists() and not (out / "stack_labels.tif").exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("corrupt.tif" in e for e in errors) and any("stack.tif" in e and "2D" in e for e in errors)


def test_a_bad_pixel_limit_is_refused_once_before_any_input(tmp_path, tiny_checkpoint, sem_like, capsys, monkeypatch):
    image, _ = sem_like
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(tmp_path / name, image)
    monkeypatch.setenv("NANOGAN_MAX_PIXELS", "abc")
    out = tmp_path / "out"
    rc = main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(out),
               "--model", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("NANOGAN_MAX_PIXELS") == 1 and "'abc'" in err and "a.tif" not in err
    assert not out.exists()


def test_segment_records_pixel_size(tmp_path, tiny_checkpoint, sem_like):
    image, _ = sem_like
    with tifffile.TiffWriter(tmp_path / "zeiss.tif") as tw:
        # a Zeiss-like CZ_SEM tag is hard to forge; the ImageJ-free route: FEI metadata text
        tw.write(image, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=5e-09\n", True)])
    rc = main(["segment", str(tmp_path / "zeiss.tif"), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)])
    assert rc == 0
    assert labels_pixel_size_nm(tmp_path / "o" / "zeiss_labels.tif") == pytest.approx(5.0, rel=1e-5)


def test_segment_takes_a_pixel_size_for_files_without_one(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    Image.fromarray(image).save(tmp_path / "figure.png")  # a PNG says no pixel size
    rc = main(["segment", str(tmp_path / "figure.png"), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)])
    assert rc == 0 and "pixel size unknown" in capsys.readouterr().out
    assert labels_pixel_size_nm(tmp_path / "o" / "figure_labels.tif") is None
    rc = main(["segment", str(tmp_path / "figure.png"), "--out", str(tmp_path / "p"), "--model", str(tiny_checkpoint),
               "--pixel-size", "1.5"])
    assert rc == 0 and "pixel size 1.5 nm (given)" in capsys.readouterr().out
    assert labels_pixel_size_nm(tmp_path / "p" / "figure_labels.tif") == pytest.approx(1.5)
    rc = main(["segment", str(tmp_path / "figure.png"), "--out", str(tmp_path / "q"), "--model", str(tiny_checkpoint),
               "--diameter-nm", "30"])
    assert rc == 1 and "give --pixel-size" in capsys.readouterr().err



def test_library_warnings_reach_the_user_as_one_line(tmp_path, tiny_checkpoint, sem_like, capsys):
    """Not Python's `file.py:181: UserWarning: ...` and the source line under it."""
    tifffile.imwrite(tmp_path / "a.tif", sem_like[0])
    rc = main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
               "--diameter", "1000"])
    err = capsys.readouterr().err
    assert rc == 0
    warned = [line for line in err.splitlines() if "no more" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: a.tif: a particle diameter of 1000")
    assert "UserWarning" not in err and ".py:" not in err

def test_unknown_model_is_a_clear_error(tmp_path, sem_like, capsys):
    tifffile.imwrite(tmp_path / "a.tif", sem_like[0])
    assert main(["segment", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no segmenter named 'nope'" in err[0] and "available:" in err[0]


def test_demo_with_given_model(tmp_path, tiny_checkpoint, tiny_generator_checkpoint, capsys):
    rc = main(["demo", "--out", str(tmp_path), "--model", str(tiny_checkpoint), "--generator", str(tiny_generator_checkpoint)])
    assert rc == 0
    for name in ("sample.tif", "sample_labels.tif", "sample_overlay.png", "summary.json", "summary.txt"):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["info_bar_rows"] == [712, 767]
    assert tifffile.imread(tmp_path / "sample_labels.tif").shape == (768, 1024)
    picture = np.asarray(Image.open(tmp_path / "sample_overlay.png"))
    assert picture.shape[0] > 768 and picture.shape[1:] == (1024, 3)  # the image, then its caption
    assert summary["synthesis"]["particles_in_mask"] > 50
    assert summary["synthesis"]["segmenter"] == summary["model"]  # which model segmented the synthetic image
    assert tifffile.imread(tmp_path / "synthetic.tif").shape == (712, 1024)
    out = capsys.readouterr().out
    assert "synthesized an SEM image" in out
    # every file the demo wrote is named, and its size is the whole particles' one, as `nanogan measure` gives it
    written = out.split("wrote to ", 1)[1]
    assert all(p.name in written for p in tmp_path.iterdir() if p.is_file()), (written, list(tmp_path.iterdir()))
    from napari_nanogan.measure import measure_file, summarize_sizes

    measured = summarize_sizes(measure_file(tmp_path / "sample_labels.tif"))
    assert summary["whole_particles"] == measured["count"]
    hint = written.split("`")[1].split()  # the measuring command the demo suggests works as printed
    assert hint[:2] == ["nanogan", "measure"] and main(hint[1:]) == 0
    assert (tmp_path / "sample_sizes.csv").is_file()
    if measured["count"]:
        assert summary["ecd_nm_d50"] == pytest.approx(measured["D50"], abs=0.01)


@requires_shipped
def test_console_script_demo_on_shipped_defaults(tmp_path):
    """The README's main job: `nanogan demo` with no arguments but --out, offline."""
    proc = subprocess.run([sys.executable, "-m", "napari_nanogan.cli", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    # the shipped model finds the procedural particles: a quality check, not only shapes
    assert summary["scores_vs_truth"]["iou"] > 0.8 and summary["scores_vs_truth"]["f1"] > 0.7, summary
    assert summary["model"].startswith("auto: "), summary  # the default chooses per image, and says which


@requires_shipped
def test_segment_names_the_model_auto_chose(tmp_path, sem_like, capsys):
    image, _ = sem_like
    path = tmp_path / "tem.tif"
    tifffile.imwrite(path, 255 - image[:176])  # dark particles on a bright background, as in TEM
    assert main(["segment", str(path), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out
    assert "model default, pixel size unknown" in line
    assert "estimated particle diameter" in line  # the default estimates it, as the model can
    assert main(["segment", str(path), "--out", str(tmp_path / "p"), "--diameter", "0"]) == 0
    assert "estimated" not in capsys.readouterr().out  # 0: the image's own scale
    tiny = tmp_path / "tiny.tif"
    tifffile.imwrite(tiny, image[:20])
    assert main(["segment", str(tiny), "--out", str(tmp_path / "q")]) == 0  # too small to estimate: as it is
    assert tifffile.imread(tmp_path / "q" / "tiny_labels.tif").shape == (20, image.shape[1])


def test_segment_diameter_options(tmp_path, tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, image)
    fei = tmp_path / "fei.tif"
    with tifffile.TiffWriter(fei) as tw:
        tw.write(image, extratags=[(34682, "s", 0, "[Scan]\nPixelWidth=5e-09\n", True)])
    model = ["--model", str(tiny_checkpoint)]
    assert main(["segment", str(plain), "--out", str(tmp_path / "a"), "--diameter", "60", *model]) == 0
    assert tifffile.imread(tmp_path / "a" / "plain_labels.tif").shape == image.shape
    # nm needs the file's pixel size: the FEI file has it, the plain one does not
    assert main(["segment", str(fei), "--out", str(tmp_path / "b"), "--diameter-nm", "300", *model]) == 0
    capsys.readouterr()
    assert main(["segment", str(plain), "--out", str(tmp_path / "c"), "--diameter-nm", "300", *model]) == 1
    assert "--diameter-nm needs the pixel size" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # refused before any image is read
        main(["segment", str(plain), "--out", str(tmp_path / "d"), "--diameter", "-5", *model])
    assert "positive" in capsys.readouterr().err and not (tmp_path / "d").exists()
    with pytest.raises(SystemExit):
        main(["segment", str(plain), "--out", str(tmp_path / "e"), "--diameter", "5", "--diameter-nm", "5", *model])
    with pytest.raises(SystemExit):
        main(["segment", str(plain), "--out", str(tmp_path / "e"), "--diameter", "big", *model])
    capsys.readouterr()
    # auto needs a model with a size model: the tiny one has none, so each image fails with the reason
    assert main(["segment", str(plain), "--out", str(tmp_path / "f"), "--diameter", "auto", *model]) == 1
    assert "no size model" in capsys.readouterr().err


def test_segment_auto_diameter_reports_the_estimate(tmp_path, sized_tiny_checkpoint, sem_like, capsys):
    image, _ = sem_like
    sized = sized_tiny_checkpoint  # estimates 72 px
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, image)
    assert main(["segment", str(plain), "--out", str(tmp_path / "a"), "--diameter", "auto", "--model", str(sized)]) == 0
    assert "estimated particle diameter 72 px" in capsys.readouterr().out
    assert tifffile.imread(tmp_path / "a" / "plain_labels.tif").shape == image.shape


def _fake_emps(data_root, make_labels, dark=lambda i: False):
    """An EMPS-like folder of 105 images (20 train, 30 val, 55 test in the fixed split) from ``make_labels(i)``.

    Bright particles on a dark background, as SEM, unless ``dark(i)``: then inverted, as bright-field TEM.
    """
    from napari_nanogan.data.procedural import render_sem

    root = data_root / "emps"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    stems = [f"img{i:03d}" for i in range(105)]
    for i, stem in enumerate(stems):
        labels = make_labels(i)
        image = render_sem(labels, seed=i)
        Image.fromarray(255 - image if dark(i) else image).save(root / "images" / f"{stem}.png")
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(root / "masks" / f"{stem}.png")
    (root / "ids.txt").write_text("\n".join(stems))


def test_fit_size_writes_a_checkpoint_with_a_size_model(tmp_path, tiny_checkpoint, capsys):
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.segmentation import Segmenter

    def labels(i):  # every 4th image large enough for a shrunk copy (20-px particles on 480 px)
        if i % 4 == 0:
            return particle_labels((480, 480), n_particles=60, mean_diameter=20, seed=i)
        return particle_labels((64, 64), n_particles=4 + i % 5, mean_diameter=6 + 2 * (i % 4), seed=i)

    _fake_emps(tmp_path / "data", labels)
    out = tmp_path / "sized.pt"
    args = ["fit-size", "--model", str(tiny_checkpoint), "--out", str(out), "--data-root", str(tmp_path / "data")]
    assert main([*args, "--datasets", "emps"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["k"] in (3, 5, 7, 11, 15)
    assert metrics["cross_validated"]["emps"]["images"] == 20 and metrics["val"]["emps"]["images"] == 30
    copies = metrics["cross_validated"]["emps-shrunk"]["images"]
    assert copies > 0 and metrics["val"]["emps-shrunk"]["images"] > 0
    segmenter = Segmenter.from_checkpoint(out, device="cpu")
    assert segmenter.size_model is not None and segmenter.size_model.reference.shape[0] == 20 + copies
    assert main([*args, "--datasets", "emps", "--no-shrunk"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics["cross_validated"]) == {"emps"} and set(metrics["val"]) == {"emps"}
    segmenter = Segmenter.from_checkpoint(out, device="cpu")
    assert segmenter.size_model.reference.shape[0] == 20
    # the network itself is unchanged
    assert all(np.array_equal(a, b) for a, b in zip(segmenter.network.state_dict().values(),
                                                    Segmenter.from_checkpoint(tiny_checkpoint, device="cpu").network.state_dict().values()))
    assert main([*args, "--datasets", "bam"]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_mixes_in_synthetic_pairs_from_an_export_folder(tmp_path, capsys):
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.io.pairs import Pair, export_pairs
    from napari_nanogan.models.checkpoint import load_checkpoint

    _fake_emps(tmp_path / "data", lambda i: particle_labels((64, 64), n_particles=5, mean_diameter=10, seed=i))
    pairs = []
    for i in range(3):
        labels = particle_labels((96, 96), n_particles=8, mean_diameter=12, seed=100 + i)
        pairs.append(Pair(f"syn{i}", render_sem(labels, seed=100 + i), labels, seed=i))
    export_pairs(pairs, tmp_path / "synthetic")
    common = ["train", "--data-root", str(tmp_path / "data"), "--datasets", "emps", "--steps", "2", "--batch-size", "2",
              "--patch-size", "64", "--base-channels", "4", "--depth", "3", "--val-every", "1000"]
    assert main([*common, "--out", str(tmp_path / "run"), "--synthetic", str(tmp_path / "synthetic"),
                 "--synthetic-share", "0.5", "--contact-weight", "5"]) == 0
    assert "synthetic: 3 pairs" in capsys.readouterr().err
    prov = load_checkpoint(tmp_path / "run" / "best.pt", kind="segmenter")["provenance"]
    assert prov["synthetic"]["pairs"] == 3 and prov["synthetic"]["domain_weights"] == {"emps": 0.5, "synthetic": 0.5}
    assert prov["train_config"]["contact_weight"] == 5.0
    assert prov["at_model_scale"] is False
    assert main([*common, "--out", str(tmp_path / "run4"), "--at-model-scale"]) == 0
    assert load_checkpoint(tmp_path / "run4" / "best.pt", kind="segmenter")["provenance"]["at_model_scale"] is True
    (tmp_path / "empty").mkdir()
    assert main([*common, "--out", str(tmp_path / "run2"), "--synthetic", str(tmp_path / "empty")]) == 2
    assert "no image-mask pairs" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "run3"), "--synthetic", str(tmp_path / "synthetic"),
                 "--synthetic-share", "1"]) == 2
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "run5"), "--synthetic-share", "0.3"]) == 2  # a share of nothing
    assert "give --synthetic DIR too" in capsys.readouterr().err and not (tmp_path / "run5").exists()


def test_train_own_scale_adds_the_large_particle_images_unshrunk(tmp_path, capsys, monkeypatch):
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.measure import median_diameter

    def labels(i):  # every other image of 40-px particles, the rest of 10-px ones
        big = i % 2 == 0
        return particle_labels((240, 240), n_particles=6 if big else 30, mean_diameter=40 if big else 10, seed=i)

    _fake_emps(tmp_path / "data", labels)
    seen = {}

    def fake_train(train, val, **kwargs):
        seen.update(train=train, **kwargs)
        return iter(())

    monkeypatch.setattr("napari_nanogan.training.segmenter.train_segmenter", fake_train)
    common = ["train", "--data-root", str(tmp_path / "data"), "--datasets", "emps", "--steps", "1",
              "--out", str(tmp_path / "run"), "--at-model-scale"]
    assert main([*common, "--own-scale", "30"]) == 0
    own, emps = seen["train"]["own_scale"], {s.name: s for s in seen["train"]["emps"]}
    large = {name for name in emps if median_diameter(labels(int(name[3:]))) >= 30}  # of the training split, as drawn
    assert large and len(large) < len(emps) and {s.name for s in own} == large
    assert all(median_diameter(s.labels) >= 30 and s.labels.shape == (240, 240) for s in own)  # at their own scale
    assert all(emps[s.name].labels.shape[0] < 240 for s in own)  # and shrunk among the real images, as before
    assert seen["domain_weights"] == {"emps": 0.85, "own_scale": 0.15}
    assert seen["provenance"]["own_scale"]["share"] == 0.15
    assert f"own scale: {len(own)} training images" in capsys.readouterr().err
    assert main([*common, "--own-scale", "30", "--own-scale-share", "0.3"]) == 0
    assert seen["domain_weights"] == {"emps": 0.7, "own_scale": 0.3}
    refused = {"give both": [c for c in common if c != "--at-model-scale"] + ["--own-scale", "30"],
               "no training image has particles of 500 px": [*common, "--own-scale", "500"],
               "above 0 px": [*common, "--own-scale", "0"],
               "between 0 and 1": [*common, "--own-scale", "30", "--own-scale-share", "1"]}
    refused["give both "] = [*common, "--own-scale-share", "0.2"]  # a share without --own-scale
    for words, argv in refused.items():
        assert main(argv) == 2, words
        assert words.strip() in capsys.readouterr().err
    # pairs folders are used as they are: nothing to add at another scale
    assert main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "p.pt"), "--own-scale", "30"]) == 2
    assert "not --pairs" in capsys.readouterr().err


def test_train_starts_from_a_named_or_saved_model_and_takes_its_shape(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.models import registry
    from napari_nanogan.models.checkpoint import load_checkpoint

    _fake_emps(tmp_path / "data", lambda i: particle_labels((64, 64), n_particles=5, mean_diameter=10, seed=i))
    common = ["train", "--data-root", str(tmp_path / "data"), "--datasets", "emps", "--steps", "1", "--batch-size", "2",
              "--patch-size", "64", "--val-every", "1000"]
    tiny = load_checkpoint(tiny_checkpoint, kind="segmenter")
    # a checkpoint: its depth and width, not the flags' defaults (depth 4, 16 channels)
    assert main([*common, "--out", str(tmp_path / "run"), "--init", str(tiny_checkpoint), "--invert", "0.5",
                 "--style", "0.25"]) == 0
    run = load_checkpoint(tmp_path / "run" / "best.pt", kind="segmenter")
    assert run["config"] == tiny["config"] and run["provenance"]["train_config"]["invert_prob"] == 0.5
    assert run["provenance"]["train_config"]["style_prob"] == 0.25
    assert run["provenance"]["init"]["path"] == str(tiny_checkpoint)
    assert "init: " in capsys.readouterr().err
    # the init model's weights, not random ones: with no learning rate, they come out as they went in
    assert main([*common, "--out", str(tmp_path / "still"), "--init", str(tiny_checkpoint), "--lr", "0"]) == 0
    still = load_checkpoint(tmp_path / "still" / "best.pt", kind="segmenter")["state_dict"]
    assert all(torch.equal(still[k], v) for k, v in tiny["state_dict"].items())
    # resuming: the run's own network, whatever --init says now (or without it)
    capsys.readouterr()
    resume = [a if a != "1" else "{}" for a in common] + ["--out", str(tmp_path / "run")]
    assert main([a.format(2) for a in resume]) == 2  # without its --invert and --style: other settings
    assert "is a run of other settings (invert_prob 0.5 -> 0.0; style_prob 0.25 -> 0.0)" in capsys.readouterr().err
    resume += ["--invert", "0.5", "--style", "0.25"]
    assert main([a.format(2) for a in resume]) == 0
    assert main([a.format(3) for a in resume] + ["--init", "no-such-model"]) == 0
    last = load_checkpoint(tmp_path / "run" / "last.pt", kind="segmenter")
    assert last["training"]["step"] == 3 and last["config"] == tiny["config"]
    assert "--init is not applied again" in capsys.readouterr().err
    # a model's name, as --model takes it
    real_resolve = registry.resolve_model
    monkeypatch.setattr(registry, "resolve_model", lambda name, **kw: tiny_checkpoint if name == "tiny" else real_resolve(name, **kw))
    assert main([*common, "--out", str(tmp_path / "run2"), "--init", "tiny"]) == 0
    assert main([*common, "--out", str(tmp_path / "run3"), "--init", "no-such-model"]) == 2
    assert "--init" in capsys.readouterr().err and not (tmp_path / "run3").exists()
    for flag in ("--invert", "--distractors"):
        assert main([*common, "--out", str(tmp_path / "run4"), flag, "1.5"]) == 2
        assert "probabilities" in capsys.readouterr().err

def test_tune_at_model_scale_tunes_on_shrunk_validation_images(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.measure import median_diameter
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.training import tuning as training

    _fake_emps(tmp_path / "data", lambda i: particle_labels((96, 96), n_particles=3, mean_diameter=48, seed=i))
    seen = []
    tune = training.tune_postprocess

    def small_grid(segmenter, samples, **kwargs):  # the CLI's own data path, a 2-candidate grid
        seen.append([(s.image.shape, median_diameter(s.labels)) for s in samples])
        return tune(segmenter, samples, grid={"seed_method": ["components"], "fg_threshold": [0.4, 0.5]}, **kwargs)

    monkeypatch.setattr(training, "tune_postprocess", small_grid)
    args = ["tune", "--model", str(tiny_checkpoint), "--data-root", str(tmp_path / "data"), "--datasets", "emps",
            "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "plain.pt")]) == 0
    assert main([*args, "--out", str(tmp_path / "scaled.pt"), "--at-model-scale"]) == 0
    plain, scaled = seen
    assert len(plain) == len(scaled) == 30
    shrunk = 0
    for (shape, d), (scaled_shape, _) in zip(plain, scaled):
        factor = 24.0 / d if d > 24 * 1.05 else 1.0  # only images of particles larger than the model's shrink
        assert scaled_shape == (round(shape[0] * factor), round(shape[1] * factor))
        shrunk += factor < 1
    assert shrunk >= 22
    tuning = load_checkpoint(tmp_path / "scaled.pt", kind="segmenter")["provenance"]["postprocess_tuning"]
    assert tuning["at_model_scale"] is True and tuning["candidates"] == 2
    # --set keeps a value as given in every candidate (and records it); the grid's own key too
    assert main([*args, "--out", str(tmp_path / "set.pt"), "--set", "merge_interior=0.5", "--set", "fg_threshold=0.45"]) == 0
    data = load_checkpoint(tmp_path / "set.pt", kind="segmenter")
    assert data["postprocess"]["merge_interior"] == 0.5 and data["postprocess"]["fg_threshold"] == 0.45
    assert data["provenance"]["postprocess_tuning"]["candidates"] == 1
    assert data["provenance"]["postprocess_tuning"]["fixed"] == {"min_confidence": 0.0, "merge_interior": 0.5,
                                                                  "fg_threshold": 0.45}
    # the confidence threshold belongs to the confidence model (fit-confidence sets it): kept, unless --set
    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.training.amend import with_postprocess

    sure = with_postprocess(tiny_checkpoint, tmp_path / "sure.pt", PostprocessConfig(min_confidence=0.35), {})
    for extra, expected in (([], 0.35), (["--set", "min_confidence=0.1"], 0.1)):
        assert main([*args, "--model", str(sure), "--out", str(tmp_path / "t.pt"), *extra]) == 0
        assert load_checkpoint(tmp_path / "t.pt", kind="segmenter")["postprocess"]["min_confidence"] == expected


def test_tune_generator_calibrates_grey_levels_on_the_training_pairs(tmp_path, tiny_generator_checkpoint, capsys):
    from napari_nanogan.data.datasets import load_samples, shared_splits
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.synthesis import Generator, synthesize

    root = tmp_path / "data" / "bam_tio2_sem"
    root.mkdir(parents=True)
    rows = ["image,mask"]
    for i in range(12):  # 6 test + 3 val held out: 3 training pairs
        labels = particle_labels((128, 128), n_particles=12, mean_diameter=14, seed=i)
        Image.fromarray(render_sem(labels, seed=i)).save(root / f"f{i}.png")
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(root / f"f{i}_mask.png")
        rows.append(f"f{i}.png,f{i}_mask.png")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "calibrated.pt"
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--data-root", str(tmp_path / "data"),
                 "--out", str(out), "--calibrate", "--blur", "0"]) == 0
    post = Generator.from_checkpoint(out, device="cpu").finishing
    assert post.gain != 1.0 and np.isfinite(post.offset)
    # fitted on the training masks' synthetic images: mapped, they have the real images' mean and spread
    # (before clipping to 0-255, which this untrained generator's flat output needs a lot of)
    train = load_samples(shared_splits(tmp_path / "data")["bam"]["train"], domain="bam")
    gen = Generator.from_checkpoint(out, device="cpu")
    plain = np.concatenate([synthesize(s.labels, gen, seed=10**5 + i, raw=True).ravel()
                            for i, s in enumerate(train)]).astype(float)
    real = np.concatenate([s.image.ravel() for s in train]).astype(float)
    mapped = post.gain * plain + post.offset
    assert abs(mapped.mean() - real.mean()) < 0.5 < 10 < abs(plain.mean() - real.mean())
    assert mapped.std() == pytest.approx(real.std(), rel=0.01)
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--data-root", str(tmp_path / "none"),
                 "--images", str(root), "--out", str(tmp_path / "x.pt"), "--calibrate"]) == 2
    assert "needs annotated images" in capsys.readouterr().err


def test_train_gan_on_bright_field_tem_learns_from_the_dark_particle_images_at_the_model_scale(
        tmp_path, tiny_generator_checkpoint, capsys):
    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.synthesis import Generator

    # even images: dark particles (TEM) of about 40 px, shrunk to about 150 px; odd ones: bright (SEM); i % 6 == 0:
    # too large particles (96 px), an image shrunk 4x to 64 px, under the 128-px minimum
    _fake_emps(tmp_path / "data", lambda i: particle_labels((256, 256), n_particles=6,
                                                             mean_diameter=96 if i % 6 == 0 else 40, seed=i),
               dark=lambda i: i % 2 == 0)
    splits = shared_splits(tmp_path / "data")["emps"]
    expected = sorted(stem for stem, _, _ in splits["train"] if int(stem[3:]) % 2 == 0 and int(stem[3:]) % 6 != 0)
    assert expected
    out = tmp_path / "run"
    assert main(["train-gan", "--dataset", "emps-tem", "--data-root", str(tmp_path / "data"), "--out", str(out),
                 "--steps", "1", "--batch-size", "2", "--patch-size", "64", "--val-every", "1",
                 "--substrate-weight", "1", "--particle-weight", "0.5", "--critic-channels", "16", "--lr-critic", "3e-4",
                 "--critic-warmup", "1"]) == 0
    assert f"train-gan: {len(expected)} annotated pairs" in capsys.readouterr().err
    prov = load_checkpoint(out / "generator.pt", kind="generator")["provenance"]
    assert (prov["train_config"]["weights"]["adv_substrate"], prov["train_config"]["weights"]["adv_particles"],
            prov["train_config"]["critic_channels"], prov["train_config"]["lr_critic"],
            prov["train_config"]["critic_warmup"]) == (1.0, 0.5, 16, 3e-4, 1)
    assert sorted(prov["data"]["emps-tem_train"]) == expected
    assert set(prov["data"]["held_out"]) == {"val", "test"}
    # the segmenter was validated on the validation split's dark-particle images
    assert "emps-tem" in load_checkpoint(out / "segmenter_best.pt", kind="segmenter")["provenance"]["validation"]
    # the post-processing is fitted on the same images
    tuned = tmp_path / "tuned.pt"
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--dataset", "emps-tem",
                 "--data-root", str(tmp_path / "data"), "--out", str(tuned), "--calibrate"]) == 0
    tuning = load_checkpoint(tuned, kind="generator")["provenance"]["postprocess_tuning"]
    assert tuning["images"] == len(expected) and "EMPS" in tuning["calibration"]
    assert Generator.from_checkpoint(tuned, device="cpu").finishing.gain != 1.0
    assert main(["train-gan", "--dataset", "emps-tem", "--data-root", str(tmp_path / "none"),
                 "--out", str(tmp_path / "run2")]) == 2
    assert "emps/" in capsys.readouterr().err
    assert main(["train-gan", "--dataset", "emps-tem", "--data-root", str(tmp_path / "data"), "--invert-init-generator",
                 "--out", str(tmp_path / "run3")]) == 2
    assert "needs --init-generator" in capsys.readouterr().err
    # model names work as --model takes them; an unknown one is a one-line error
    assert main(["train-gan", "--dataset", "emps-tem", "--data-root", str(tmp_path / "data"), "--init-generator",
                 "no-such-generator", "--out", str(tmp_path / "run4")]) == 2
    assert "no generator named 'no-such-generator'" in capsys.readouterr().err
    assert main(["train-gan", "--dataset", "emps-tem", "--data-root", str(tmp_path / "data"), "--loss-weights",
                 "cycle_imag=1", "--out", str(tmp_path / "run5")]) == 2
    assert "--loss-weights" in capsys.readouterr().err
    for flags, message in ((["--critic-warmup", "-1"], "--critic-warmup must be >= 0"),
                           (["--critic-channels", "0"], "--critic-channels must be >= 1"),
                           (["--lr-critic", "0"], "--lr-critic must be > 0"),
                           (["--substrate-weight", "-1"], "--substrate-weight must be >= 0"),
                           (["--particle-weight", "-1"], "--particle-weight must be >= 0")):
        assert main(["train-gan", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run6"), *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run6").exists()


def test_train_gan_loss_weights_are_parsed_strictly():
    from napari_nanogan.cli.train import loss_weights
    from napari_nanogan.config import GanLossWeights

    base = GanLossWeights(adv_texture=1.0)
    assert loss_weights(None, base) == base
    w = loss_weights("cycle_image=0.5, supervised_image=0", base)
    assert (w.cycle_image, w.supervised_image, w.adv_texture, w.cycle_mask) == (0.5, 0.0, 1.0, base.cycle_mask)
    for bad in ("cycle_image", "nope=1", "cycle_image=x", "cycle_image=-1", "cycle_image=nan"):
        with pytest.raises(ValueError):
            loss_weights(bad, base)


def test_tune_generator_stores_the_real_noise_level(tmp_path, tiny_generator_checkpoint, capsys):
    from napari_nanogan.synthesis import Generator

    folder = tmp_path / "real"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # flat grey with white noise of sd 4: residual level 4 x 0.876
        Image.fromarray(np.clip(120 + rng.normal(0, 4, (96, 128)), 0, 255).astype(np.uint8)).save(folder / f"r{i}.png")
    (folder / "broken.tif").write_bytes(b"not a tiff")
    out = tmp_path / "tuned.pt"
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--images", str(folder),
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipping" in captured.err and json.loads(captured.out.strip().splitlines()[-1])["images"] == 3
    post = Generator.from_checkpoint(out, device="cpu").finishing
    assert post.noise_residual == pytest.approx(4 * 0.876, rel=0.1) and post.blur_sigma == 0.7
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--images", str(empty),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--images", str(folder),
                 "--out", str(tmp_path / "x.pt"), "--blur", "-1"]) == 2
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--images", str(folder),
                 "--out", str(tmp_path / "x.pt"), "--particle-spread", "-0.2"]) == 2
    assert "--particle-spread must be a finite number >= 0" in capsys.readouterr().err
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--images", str(folder),
                 "--out", str(tmp_path / "spread.pt"), "--particle-spread", "0.3"]) == 0
    assert Generator.from_checkpoint(tmp_path / "spread.pt", device="cpu").finishing.particle_spread == 0.3
    # re-tuned on images alone (nothing annotated to fit it on), a generator keeps its spread
    assert main(["tune-generator", "--model", str(tmp_path / "spread.pt"), "--images", str(folder),
                 "--out", str(tmp_path / "kept.pt")]) == 0
    assert Generator.from_checkpoint(tmp_path / "kept.pt", device="cpu").finishing.particle_spread == 0.3
    # ... and its calibrated grey levels
    from napari_nanogan.config import Finishing
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.training.amend import with_finishing

    with_finishing(tiny_generator_checkpoint, tmp_path / "calibrated.pt", Finishing(gain=0.8, offset=12.0),
                   tuning={"calibration": "BAM training fields"})
    assert main(["tune-generator", "--model", str(tmp_path / "calibrated.pt"), "--images", str(folder),
                 "--out", str(tmp_path / "kept2.pt")]) == 0
    kept = Generator.from_checkpoint(tmp_path / "kept2.pt", device="cpu").finishing
    assert (kept.gain, kept.offset) == (0.8, 12.0) and kept.noise_residual == pytest.approx(4 * 0.876, rel=0.1)
    tuning = load_checkpoint(tmp_path / "kept2.pt", kind="generator")["provenance"]["postprocess_tuning"]
    assert tuning["calibration"] == "kept from the checkpoint: BAM training fields"
    assert main(["tune-generator", "--model", str(tmp_path / "spread.pt"), "--images", str(folder),
                 "--out", str(tmp_path / "x.pt"), "--particle-spread", "inf"]) == 2


def test_training_progress_shows_no_nan_loss_when_stopped(capsys):
    """The stop record has no loss: the bar keeps the last step's (it showed 'loss=nan')."""
    from napari_nanogan.cli.common import drive_training
    from napari_nanogan.training.loop import TrainProgress

    def loop(should_stop):
        yield TrainProgress(1, 3, losses={"total": 0.5}, seconds_per_step=1.0)
        yield TrainProgress(2, 3, seconds_per_step=1.0, checkpoint="last.pt", stopped=True)

    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert drive_training(loop, 3, "train", lambda rec: None) == 0
    err = capsys.readouterr().err
    assert "stopped at step 2; checkpoint last.pt" in err and "nan" not in err
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's SIGTERM handler is back


def test_every_command_prints_its_help():
    """Each subcommand's ``--help`` formats (a lone ``%`` in a help text made argparse raise)."""
    import argparse

    from napari_nanogan.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"segment", "synthesize", "demo", "train-gan", "tune-generator", "train-texture"} <= set(commands)
    for name, sub in commands.items():
        assert sub.format_help().startswith("usage:"), name


def test_train_on_pairs_starts_from_default_unless_told(tmp_path, monkeypatch):
    """Without --init the recipe fine-tunes `default`, as --help says; it trained from scratch (a
    useless model) because the unset option read as the word "none"."""
    import napari_nanogan.training.pairs as pairs

    seen = []

    def fake(folders, out, *, init, **kwargs):
        seen.append(init)
        yield from ()

    monkeypatch.setattr(pairs, "train_on_pairs", fake)
    for extra, expected in (([], "default"), (["--init", "none"], None), (["--init", "sem-tio2"], "sem-tio2")):
        main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--steps", "1", *extra])
        assert seen[-1] == expected


def test_train_on_pairs_from_export_and_plain_folders_writes_a_usable_model(tmp_path, tiny_checkpoint, capsys):
    from napari_nanogan.data.procedural import particle_labels, render_sem
    from napari_nanogan.io.pairs import Pair, export_pairs
    from napari_nanogan.models.checkpoint import load_checkpoint

    export_pairs([Pair(f"syn{i}", render_sem(lab, seed=i), lab, seed=i)
                  for i, lab in enumerate(particle_labels((96, 96), n_particles=8, mean_diameter=12, seed=s)
                                          for s in range(3))], tmp_path / "synthetic")
    plain = _pairs_folder(tmp_path / "real", 2)
    lab = particle_labels((80, 80), n_particles=6, mean_diameter=10, seed=3)
    Image.fromarray(render_sem(lab, seed=3)).save(plain / "images" / "orphan.png")  # no mask: left out, and said
    out = tmp_path / "mine.pt"
    from napari_nanogan.segmentation.confidence import FEATURES, ConfidenceModel
    from napari_nanogan.training.amend import with_confidence_model

    final = ConfidenceModel(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.ones(len(FEATURES)), 0.0, {})
    init = with_confidence_model(tiny_checkpoint, tmp_path / "init.pt", final, {}, final=True)
    args = ["train", "--pairs", str(tmp_path / "synthetic"), str(plain), "--out", str(out), "--steps", "2",
            "--init", str(init), "--batch-size", "2", "--invert", "0.5", "--precision", "fp32"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"{plain}: 2 pairs (1 image without a partner, left out)" in err and "synthetic: 3 pairs" in err
    data = load_checkpoint(out, kind="segmenter")
    assert data["provenance"]["pairs"] == {"synthetic": 3, "real": 2}
    assert data["provenance"]["train_config"]["invert_prob"] == 0.5
    assert data["provenance"]["precision"] == "fp32"
    assert data["final_confidence_model"]["features"] == list(FEATURES)  # the starting model's, kept
    assert (tmp_path / "mine.pt.run" / "last.pt").is_file()
    kept = out.read_bytes()
    for other in (["--lr", "0.01"], ["--init", "none"], ["--batch-size", "4"]):  # never resumed with other settings
        assert main([*args, *other]) == 2 and out.read_bytes() == kept
        err = capsys.readouterr().err
        assert "is a run of other settings" in err or "another model configuration" in err
    plain_only = [a for a in args if a != str(tmp_path / "synthetic")]
    assert main(plain_only) == 2 and "pairs" in capsys.readouterr().err  # other data
    assert main([*args[:args.index("--steps") + 1], "3", *args[args.index("--steps") + 2:]]) == 0  # longer: resumed
    assert load_checkpoint(out, kind="segmenter")["provenance"]["step"] == 3
    image = tmp_path / "x.tif"
    tifffile.imwrite(image, render_sem(particle_labels((64, 64), n_particles=4, mean_diameter=10, seed=1), seed=1))
    assert main(["segment", str(image), "--out", str(tmp_path / "labels"), "--model", str(out)]) == 0
    assert main(["train", "--pairs", str(tmp_path / "nothing"), "--out", str(tmp_path / "n.pt"), "--steps", "1"]) == 2
    assert "not a folder of pairs" in capsys.readouterr().err
    assert main(["train", "--pairs", str(plain), "--out", str(tmp_path), "--steps", "1"]) == 2


def _pairs_folder(folder, n: int):
    """``folder/images/f<i>.png`` and ``folder/masks/f<i>.png``: ``n`` procedural image-mask pairs."""
    from napari_nanogan.data.procedural import particle_labels, render_sem

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        lab = particle_labels((80, 80), n_particles=6, mean_diameter=10, seed=10 + i)
        Image.fromarray(render_sem(lab, seed=10 + i)).save(folder / "images" / f"f{i}.png")
        Image.fromarray(((lab > 0) * 255).astype(np.uint8)).save(folder / "masks" / f"f{i}.png")
    return folder


def test_train_on_pairs_leaves_out_a_pair_it_cannot_read_and_says_which(tmp_path, tiny_checkpoint, capsys):
    from napari_nanogan.models.checkpoint import load_checkpoint

    plain = _pairs_folder(tmp_path / "real", 3)
    (plain / "images" / "f1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "mine.pt"
    assert main(["train", "--pairs", str(plain), "--out", str(out), "--steps", "1", "--init", str(tiny_checkpoint),
                 "--batch-size", "2", "--precision", "fp32"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "pair left out" in line]
    assert len(warned) == 1 and str(plain / "images" / "f1.png") in warned[0]
    assert load_checkpoint(out, kind="segmenter")["provenance"]["pairs"] == {"real": 2}
    for i in (0, 2):
        (plain / "images" / f"f{i}.png").write_bytes(b"not an image")
    assert main(["train", "--pairs", str(plain), "--out", str(tmp_path / "n.pt"), "--steps", "1"]) == 2
    assert "none of its 3 pairs can be read" in capsys.readouterr().err


def test_every_option_of_every_command_says_what_it_does():
    from napari_nanogan.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    silent = {name: [a.option_strings[0] if a.option_strings else a.dest for a in sub._actions
                     if not a.help and a.dest != "help"] for name, sub in commands.items()}
    assert not {k: v for k, v in silent.items() if v}, silent


def test_progress_bars_written_to_a_log_redraw_every_half_minute_not_every_step(capsys, monkeypatch):
    import time

    from napari_nanogan.cli import common

    bar = common.progress_bar(5, "work")  # pytest's stderr is not a terminal, as a log file is not
    for _ in range(5):
        time.sleep(0.15)  # a live bar redraws after 0.1 s
        bar.update(1)
    bar.close()
    assert "/5 [" not in capsys.readouterr().err  # work of under half a minute: no bar in the log at all
    monkeypatch.setattr(common, "LOG_INTERVAL", 0.2)
    bar = common.progress_bar(5, "work")
    for _ in range(5):
        time.sleep(0.15)
        bar.update(1)
    bar.close()
    print("wrote it", file=sys.stderr)
    err = capsys.readouterr().err
    assert 1 <= err.count("/5 [") <= 4  # after the delay, one line per interval (and the final state), not per step
    assert "5/5 [" in err and "\nwrote it" in err  # what comes next starts its own line


@requires_shipped
def test_segment_adds_small_particles_beside_large_ones_unless_told_not_to(tmp_path, capsys):
    from bench.failure_modes import stage

    image, truth, _ = stage("satellites")  # ~110 px spheres with 10-28 px satellites
    tifffile.imwrite(tmp_path / "powder.tif", image)
    counts = {}
    for flag in ([], ["--no-small-pass"]):
        out = tmp_path / ("plain" if not flag else "without")
        assert main(["segment", str(tmp_path / "powder.tif"), "--out", str(out), *flag]) == 0
        counts[bool(flag)] = int(tifffile.imread(out / "powder_labels.tif").max())
        said = capsys.readouterr().out
        assert ("from a finer pass" in said) != bool(flag) and "times smaller" in said
    assert counts[True] < 0.5 * counts[False] <= len(np.unique(truth))


def test_segment_inverts_the_grey_levels_where_the_network_finds_more_there_unless_told_not_to(tmp_path, capsys):
    from bench.randomized_images import draw

    image, truth, _ = draw(42)  # 229 small bright rods on a HAADF ground: the network misses most as they are
    tifffile.imwrite(tmp_path / "rods.tif", image)
    counts = {}
    for flag in ([], ["--no-polarity-check"]):
        out = tmp_path / ("plain" if not flag else "without")
        assert main(["segment", str(tmp_path / "rods.tif"), "--out", str(out), "--model", "default",
                     "--diameter", "11", *flag]) == 0
        counts[bool(flag)] = int(tifffile.imread(out / "rods_labels.tif").max())
        assert ("grey levels inverted" in capsys.readouterr().out) != bool(flag)
    assert counts[True] < 0.5 * counts[False] <= truth.max()


def test_results_go_on_after_their_reader_stops():
    import os

    child = ("import sys\nfrom napari_nanogan.cli.common import print_result\n"
             "for i in range(3):\n    print_result('x' * 100_000)\nprint('carried on', file=sys.stderr)\n")
    read, write = os.pipe()
    os.close(read)  # `nanogan segment ... | head -1` after head has exited
    try:
        proc = subprocess.run([sys.executable, "-c", child], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == 0 and "carried on" in proc.stderr and "Traceback" not in proc.stderr


def test_training_progress_into_a_log_is_not_redrawn_every_step(capsys, monkeypatch):
    """`nanogan train`'s bar, with its loss and seconds per step, follows the log interval too."""
    from napari_nanogan.cli import common
    from napari_nanogan.training.loop import TrainProgress

    def loop(should_stop):
        for step in range(1, 41):
            yield TrainProgress(step=step, total=40, losses={"total": 0.5}, seconds_per_step=0.01)

    assert common.drive_training(loop, 40, "train", lambda rec: None) == 0
    err = capsys.readouterr().err
    assert "/40 [" not in err  # 40 quick steps: under the half-minute delay, no bar in the log at all
    monkeypatch.setattr(common, "LOG_INTERVAL", 0.05)

    def slow_loop(should_stop):
        import time

        for step in range(1, 41):
            time.sleep(0.01)
            yield TrainProgress(step=step, total=40, losses={"total": 0.5}, seconds_per_step=0.01)

    import time

    start = time.perf_counter()
    assert common.drive_training(slow_loop, 40, "train", lambda rec: None) == 0
    redraws = (time.perf_counter() - start) / 0.05 + 2  # at most one per interval, and the final state
    err = capsys.readouterr().err
    assert 1 <= err.count("/40 [") <= min(redraws, 39) and "40/40 [" in err and "s/step=0.01" in err


def test_train_pairs_applies_the_schedule_flags_given_and_refuses_bad_ones(tmp_path, monkeypatch, capsys):
    """--batch-size, --patch-size, --lr, --checkpoint-every and --contact-weight reach the --pairs recipe (they were
    dropped without a word); the recipe keeps its own values for those not given; bad values name their flag."""
    import napari_nanogan.training.pairs as pairs

    seen = []

    def fake(folders, out, *, config, **kwargs):
        seen.append(config)
        yield from ()

    monkeypatch.setattr(pairs, "train_on_pairs", fake)
    base = ["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "m.pt")]
    assert main(base) == 0 and seen[-1] == pairs.PAIRS_RECIPE
    assert main([*base, "--batch-size", "2", "--patch-size", "128", "--lr", "1e-4", "--checkpoint-every", "5",
                 "--contact-weight", "0", "--steps", "30"]) == 0
    got = seen[-1]
    assert (got.batch_size, got.patch_size, got.lr, got.checkpoint_every, got.contact_weight, got.steps) == (
        2, 128, 1e-4, 5, 0.0, 30)
    assert got.warmup_steps == pairs.PAIRS_RECIPE.warmup_steps
    capsys.readouterr()
    for flag, value in (("--steps", "0"), ("--steps", "-5"), ("--lr", "nan"), ("--patch-size", "8"),
                        ("--batch-size", "0"), ("--checkpoint-every", "0"), ("--val-every", "5")):
        assert main([*base, flag, value]) == 2, flag
        assert flag in capsys.readouterr().err
    assert len(seen) == 2  # nothing refused was started
    (tmp_path / "notes.pt").write_text("my notes")  # an unrelated file at --out is never replaced
    assert main(["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "notes.pt")]) == 2
    assert "not a napari-nanogan model" in capsys.readouterr().err
    assert (tmp_path / "notes.pt").read_text() == "my notes" and len(seen) == 2


def test_shared_data_training_names_a_bad_schedule_flag(tmp_path, capsys):
    assert main(["train", "--data-root", str(tmp_path), "--out", str(tmp_path / "r"), "--lr", "-1"]) == 2
    assert "--lr must be a finite number of at least 0" in capsys.readouterr().err


def test_a_first_ctrl_c_stops_training_after_the_step_and_keeps_last_pt(tmp_path):
    """Ctrl-C stops as SIGTERM does (the loop writes last.pt; exit 130); a second one aborts at once."""
    import signal

    from napari_nanogan.cli.common import drive_training
    from napari_nanogan.training.loop import TrainProgress

    def loop(should_stop, presses):
        for step in range(1, 50):
            if should_stop():
                (tmp_path / "last.pt").write_text(str(step))
                yield TrainProgress(step, 50, checkpoint=str(tmp_path / "last.pt"), stopped=True)
                return
            yield TrainProgress(step, 50, losses={"total": 1.0})
            if step == 3:
                for _ in range(presses):
                    signal.raise_signal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    assert drive_training(lambda stop: loop(stop, 1), 50, "t", lambda rec: None) == 130
    assert (tmp_path / "last.pt").read_text() == "4" and signal.getsignal(signal.SIGINT) is before
    (tmp_path / "last.pt").unlink()
    assert drive_training(lambda stop: loop(stop, 2), 50, "t", lambda rec: None) == 130
    assert not (tmp_path / "last.pt").exists() and signal.getsignal(signal.SIGINT) is before


def test_sigterm_stops_training_after_the_step_keeps_last_pt_and_says_it_did_not_finish(tmp_path):
    """A preempted run (SIGTERM) writes last.pt and exits 143, as every unfinished command does: a batch
    script must not take it for a finished one (it exited 0)."""
    import signal

    from napari_nanogan.cli.common import drive_training
    from napari_nanogan.training.loop import TrainProgress

    def loop(should_stop):
        for step in range(1, 50):
            if should_stop():
                (tmp_path / "last.pt").write_text(str(step))
                yield TrainProgress(step, 50, checkpoint=str(tmp_path / "last.pt"), stopped=True)
                return
            yield TrainProgress(step, 50, losses={"total": 1.0})
            if step == 3:
                signal.raise_signal(signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    assert drive_training(loop, 50, "t", lambda rec: None) == 143
    assert (tmp_path / "last.pt").read_text() == "4" and signal.getsignal(signal.SIGTERM) is before


def test_training_leaves_an_ignored_ctrl_c_ignored():
    """A background job of a non-interactive shell ignores SIGINT: its training must not stop at the shell's."""
    import signal

    from napari_nanogan.cli.common import drive_training
    from napari_nanogan.training.loop import TrainProgress

    def loop(should_stop):
        for step in range(1, 6):
            if should_stop():
                yield TrainProgress(step, 5, stopped=True, checkpoint="last.pt")
                return
            yield TrainProgress(step, 5, losses={"total": 1.0})
            signal.raise_signal(signal.SIGINT)

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert drive_training(loop, 5, "t", lambda rec: None) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
