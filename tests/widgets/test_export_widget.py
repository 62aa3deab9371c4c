import json

import numpy as np
import pytest
import tifffile

from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.widgets.export import ExportWidget


@pytest.fixture
def setup(make_napari_viewer, tiny_generator_checkpoint, tmp_path):
    viewer = make_napari_viewer()
    w = ExportWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.model.choices = [str(tiny_generator_checkpoint)]
    w.model.value = str(tiny_generator_checkpoint)
    labels = particle_labels((64, 80), n_particles=8, mean_diameter=12, seed=0)
    # a float image in nm, as a user's processed layer might be
    viewer.add_image(render_sem(labels, seed=0).astype(np.float32) / 255, name="my image", scale=(2.5, 2.5), units="nm")
    viewer.add_labels(labels, name="my labels", scale=(2.5, 2.5), units="nm")
    w.out_dir.value = tmp_path / "out"
    return viewer, w, tmp_path / "out"


def test_exports_annotated_and_synthetic_pairs_with_manifest(setup, qtbot, wait_done):
    viewer, w, out = setup
    viewer.layers["my image"].metadata["info_bar_rows"] = (56, 64)  # as the reader records a data bar
    w.picker.image_layer.value, w.picker.labels_layer.value = viewer.layers["my image"], viewer.layers["my labels"]
    assert w.picker.add_pair()
    w.synthetic_masks.value = ["my labels"]
    w.n.value, w.png.value = 2, True
    w.run()
    wait_done(w)
    manifest = json.loads((out / "manifest.json").read_text())["pairs"]
    assert [p["name"] for p in manifest] == ["my_image", "my_labels_0", "my_labels_1"]
    assert manifest[0]["converted_from"] == "float32" and manifest[0]["dtype"] == "uint16"
    assert manifest[0]["info_bar_rows"] == [56, 63]  # first and last row and "info_bar_rows" not in manifest[1]
    assert manifest[1]["source"] == "synthetic from layer my labels" and manifest[1]["model_sha256"]
    for p in manifest:
        with tifffile.TiffFile(out / p["image"]) as tif:
            x_res = tif.pages[0].tags["XResolution"].value
            assert 1e7 / (x_res[0] / x_res[1]) == pytest.approx(2.5, rel=1e-4)
        mask = tifffile.imread(out / p["mask"])
        assert mask.dtype == np.uint16 and mask.shape == (64, 80)
        assert (out / p["png"]).is_file()
    assert np.array_equal(tifffile.imread(out / "masks" / "my_labels_0.tif"), viewer.layers["my labels"].data)
    assert not list(out.rglob("*.tmp"))
    assert "done" in w.status.value


def test_existing_files_refused_before_any_work(setup, qtbot, monkeypatch, wait_done):
    viewer, w, out = setup
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.export.show_error", errors.append)
    w.synthetic_masks.value = ["my labels"]
    w.n.value = 1
    w.run()
    wait_done(w)
    before = (out / "images" / "my_labels_0.tif").stat().st_mtime_ns
    w.n.value = 2
    w.worker = None
    w.run()
    assert w.worker is None and errors and "exist already" in errors[-1]
    assert w.status.value.startswith("not started:") and "exist already" in w.status.value  # not the last "done"
    assert not (out / "images" / "my_labels_1.tif").exists()  # nothing written
    assert (out / "images" / "my_labels_0.tif").stat().st_mtime_ns == before
    w.overwrite.value = True
    w.run()
    wait_done(w)
    assert (out / "images" / "my_labels_1.tif").exists()
    # one entry per pair: the overwritten my_labels_0 replaces its entry (it was listed twice)
    assert [p["name"] for p in json.loads((out / "manifest.json").read_text())["pairs"]] == ["my_labels_0", "my_labels_1"]


def test_cancel_leaves_only_complete_pairs(setup, qtbot, wait_done):
    viewer, w, out = setup
    w.synthetic_masks.value = ["my labels"]
    w.n.value = 200
    w.run()
    qtbot.waitUntil(lambda: w.progress.value() >= 2, timeout=60_000)
    w.cancel()
    wait_done(w)
    manifest = json.loads((out / "manifest.json").read_text())["pairs"]
    assert 2 <= len(manifest) < 200
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(f"{p['name']}.tif" for p in manifest)
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(f"{p['name']}.tif" for p in manifest)
    assert "stopped" in w.status.value


def test_bad_choices_get_clear_messages(setup, monkeypatch):
    viewer, w, out = setup
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.export.show_error", errors.append)
    w.run()
    assert "add an annotated pair" in errors[-1]
    viewer.add_labels(np.zeros((2, 30, 30), np.int32), name="stack")
    w.synthetic_masks.value = ["stack"]
    w.run()
    assert "3D" in errors[-1] and w.worker is None
    viewer.add_image(np.zeros((64, 80, 3), np.uint8), name="rgb", rgb=True)
    w.picker.image_layer.value, w.picker.labels_layer.value = viewer.layers["rgb"], viewer.layers["my labels"]
    assert not w.picker.add_pair()
    assert "RGB" in errors[-1]
    w.out_dir.line_edit.value = ""
    w.synthetic_masks.value = ["my labels"]
    w.run()
    assert "choose a folder" in errors[-1]
    w.out_dir.line_edit.value = "relative/folder"
    w.run()
    assert "choose a folder" in errors[-1]
    assert not out.exists() and w.worker is None


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(setup, monkeypatch, tmp_path):
    viewer, w, out = setup
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.export.show_error", errors.append)
    w.synthetic_masks.value = ["my labels"]
    (tmp_path / "a_file").write_text("x")
    w.out_dir.value = tmp_path / "a_file"
    w.run()
    assert "is a file, not a folder" in errors[-1] and w.worker is None and w.status.value.startswith("not started")
    w.out_dir.value = tmp_path / "a_file" / "pairs"
    w.run()
    assert "a_file is a file, so" in errors[-1] and w.worker is None
    w.out_dir.value = out
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as on a read-only disk
    w.run()
    assert "cannot be written to" in errors[-1] and w.worker is None and not out.exists()


def test_a_write_that_fails_mid_run_is_a_failure_not_a_cancel(setup, monkeypatch, wait_done):
    import errno

    from napari_nanogan.io import pairs

    viewer, w, out = setup
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.export.show_error", errors.append)
    real, calls = pairs.export_pairs, []

    def disk_full_at_the_second(batch, folder, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / "images" / f"{batch[0].name}.tif"))
        return real(batch, folder, **kwargs)

    monkeypatch.setattr(pairs, "export_pairs", disk_full_at_the_second)
    w.synthetic_masks.value = ["my labels"]
    w.n.value = 3
    w.run()
    wait_done(w)
    assert w.status.value.startswith("failed after 1 of 3 pairs") and "No space left on device" in w.status.value
    assert "my_labels_1.tif" in errors[-1] and str(out) in errors[-1]
    assert [p["name"] for p in json.loads((out / "manifest.json").read_text())["pairs"]] == ["my_labels_0"]


def test_a_cancel_after_the_last_pair_is_reported_as_done(setup):
    """Cancel pressed while the last pair was written: every pair was there, yet the panel said "stopped"."""
    _, w, _ = setup
    w.progress.setRange(0, 3)
    for done, expected in ((3, "done: all 3 pairs written (Cancel came after the last)"),
                           (2, "stopped after 2 of 3 pairs (each written completely)")):
        w.progress.setValue(done)
        w.status.value = f"{done} / 3: pair"
        w._on_finished()
        assert w.status.value == expected


def test_the_pair_pickers_start_on_the_newest_labels_and_their_image_never_a_guess(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((32, 32), np.uint8), name="older")
    image = viewer.add_image(np.zeros((64, 80), np.uint8), name="image")
    viewer.add_image(np.zeros((64, 80, 3), np.uint8), name="figure", rgb=True)  # RGB: not for training
    viewer.add_labels(np.zeros((32, 32), np.int32), name="other size")
    labels = viewer.add_labels(np.zeros((64, 80), np.int32), name="its labels")
    w = ExportWidget(viewer)
    viewer.window.add_dock_widget(w)
    # the newest labels, and the only grey image of their size
    assert w.picker.labels_layer.value is labels and w.picker.image_layer.value is image
    # a second image of that size, newer: labels that do not name their image are not paired with it
    twin = viewer.add_image(np.zeros((64, 80), np.uint8), name="twin")
    painted = viewer.add_labels(np.zeros((64, 80), np.int32), name="painted")
    fresh = ExportWidget(viewer)
    assert fresh.picker.labels_layer.value is painted and fresh.picker.image_layer.value is not twin
    # labels segmented from an image (their source_layer) are paired with it
    viewer.add_labels(np.zeros((64, 80), np.int32), name="twin particles", metadata={"source_layer": "twin"})
    assert ExportWidget(viewer).picker.image_layer.value is twin


def test_export_refuses_a_mask_of_more_particles_than_a_mask_holds_before_any_work(make_napari_viewer, tmp_path):
    from napari_nanogan.widgets.export import plan_annotated

    viewer = make_napari_viewer()
    labels = np.zeros((400, 400), np.int32)
    labels.reshape(-1)[::2][:70000] = np.arange(1, 70001)
    image = viewer.add_image(np.zeros((400, 400), np.uint8), name="field")
    many = viewer.add_labels(labels, name="field labels")
    with pytest.raises(ValueError, match="70000 particles, more than a mask holds"):
        plan_annotated([(image, many)])


def test_two_pairs_of_one_file_name_are_refused_by_their_layers_names(setup):
    viewer, w, out = setup
    labels = viewer.layers["my labels"].data
    viewer.add_image(render_sem(labels, seed=1), name="my_image")  # "my image" and "my_image": one file name
    viewer.add_labels(labels.copy(), name="other labels")
    for image, mask in (("my image", "my labels"), ("my_image", "other labels")):
        w.picker.image_layer.value, w.picker.labels_layer.value = viewer.layers[image], viewer.layers[mask]
        assert w.picker.add_pair()
    w.run()
    assert "'my image / my labels' and 'my_image / other labels' would both be written as 'my_image'" in w.status.value
    assert w.status.value.startswith("not started:") and not out.exists()


def test_pairs_drawn_from_an_empty_mask_are_written_and_said_to_be_bare_substrate(setup, wait_done):
    viewer, w, out = setup
    viewer.add_labels(np.zeros((64, 80), np.int32), name="blank")
    w.synthetic_masks.value = ["blank"]
    w.n.value = 1
    w.run()
    assert "'blank' hold(s) no particle" in w.status.value
    wait_done(w)
    assert (out / "masks" / "blank_0.tif").is_file()
    assert w.status.value.startswith("done: 1 pairs") and w.status.value.endswith("'blank': bare substrate, no particle")
