import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.config import Preset
from napari_nanogan.training import finetune as ft
from napari_nanogan.widgets.finetune import FinetuneWidget


@pytest.fixture
def setup(make_napari_viewer, tiny_checkpoint, tiny_generator_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOGAN_USER_MODELS", str(tmp_path / "models"))
    gen = tiny_generator_checkpoint
    viewer = make_napari_viewer()
    w = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.base.choices = [str(tiny_checkpoint)]
    w.base.value, w.base_generator = str(tiny_checkpoint), str(gen)
    labels = particle_labels((128, 128), n_particles=25, mean_diameter=12, seed=0)
    viewer.add_image(render_sem(labels, seed=0), name="img")
    viewer.add_labels(labels, name="ann")
    return viewer, w, tmp_path


def test_finetune_widget_runs_responsive_and_saves(setup, qtbot, monkeypatch, wait_done):
    viewer, w, tmp_path = setup
    monkeypatch.setitem(ft.PRESETS, "quick", Preset(3, 0, "test", patch_size=32, batch_size=2))
    w.image_layer.value, w.labels_layer.value = viewer.layers["img"], viewer.layers["ann"]
    w.add_pair()
    assert w.pair_list.count() == 1
    w.name.value = "mine"
    from napari_nanogan.widgets.segment import SegmentWidget
    from napari_nanogan.widgets.synthesize import SynthesizeWidget

    seg_panel, synth_panel = SegmentWidget(viewer), SynthesizeWidget(viewer)
    assert "mine" not in seg_panel.model.choices
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    w.run()
    wait_done(w, timeout=120_000)
    timer.stop()
    assert len(ticks) > 5  # the Qt event loop kept running while the worker trained
    assert (tmp_path / "models" / "mine.pt").is_file()
    assert "before" in w.result.value and "after" in w.result.value
    assert "diameter estimates" not in w.result.value  # the tiny base has no size model to calibrate
    assert w.figure.axes and w.figure.axes[0].lines
    from napari_nanogan.models.registry import available_models

    assert "mine" in available_models("segmenter") and "mine" in available_models("generator")
    # the other panels list the new model at once, without reopening them
    assert "mine" in seg_panel.model.choices and "mine" in synth_panel.model.choices
    # its card, then export and delete from the panel
    w.my_model.value = "mine"
    assert "after IoU" in w.card.value
    assert w.status.value.startswith("done: ")  # not the last stage's "scoring ..."
    refused = []
    monkeypatch.setattr("napari_nanogan.widgets.finetune.show_error", refused.append)
    w.export_model()  # the folder field left as it starts: napari's working folder is not a choice
    assert refused == ["Fine-tune: choose an existing folder to export the model to."]
    w.export_to.value = tmp_path
    w.export_model()
    assert (tmp_path / "mine.pt").is_file()
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.finetune.show_error", errors.append)
    w.export_model()
    assert "not overwriting" in errors[-1]
    monkeypatch.setattr("napari_nanogan.widgets.finetune.confirm", lambda *a: False)
    w.delete_model()
    assert (tmp_path / "models" / "mine.pt").is_file()
    monkeypatch.setattr("napari_nanogan.widgets.finetune.confirm", lambda *a: True)
    w.delete_model()
    assert not (tmp_path / "models" / "mine.pt").exists()
    assert "mine" not in seg_panel.model.choices and "mine" not in w.my_model.choices


def test_finetune_widget_says_how_the_diameter_was_calibrated(setup, sized_tiny_checkpoint, monkeypatch, wait_done):
    viewer, w, tmp_path = setup
    monkeypatch.setitem(ft.PRESETS, "quick", Preset(2, 0, "test", patch_size=32, batch_size=2))
    w.base.choices = [str(sized_tiny_checkpoint)]
    w.base.value = str(sized_tiny_checkpoint)
    w.image_layer.value, w.labels_layer.value = viewer.layers["img"], viewer.layers["ann"]
    w.add_pair()
    w.name.value = "sized"
    w.run()
    wait_done(w, timeout=120_000)
    from napari_nanogan.models.checkpoint import load_checkpoint

    correction = load_checkpoint(tmp_path / "models" / "sized.pt")["card"]["size_calibration"]["correction"]
    assert f"particle diameter estimates x {correction:.2f}" in w.result.value
    w.my_model.value = "sized"
    assert f"diameter estimates x {correction:.2f}" in w.card.value and "changed since" not in w.card.value
    # a size model of its own (nanogan fit-size) replaces the calibration, and the card says the scores predate it
    from conftest import constant_size_model
    from napari_nanogan.training.amend import with_size_model

    path = tmp_path / "models" / "sized.pt"
    with_size_model(path, path, constant_size_model(30.0), {"command": "test"})
    w._show_card()
    assert "diameter estimates x" not in w.card.value
    assert "changed since (size_correction, size_model, size_reference, size_reference_sha256)" in w.card.value


def test_cancel_stops_within_a_step_and_keeps_a_model(setup, qtbot, monkeypatch, wait_done):
    viewer, w, tmp_path = setup
    monkeypatch.setitem(ft.PRESETS, "quick", Preset(10_000, 0, "test", patch_size=32, batch_size=2))
    w.image_layer.value, w.labels_layer.value = viewer.layers["img"], viewer.layers["ann"]
    w.add_pair()
    w.name.value = "cancelled"
    w.run()
    qtbot.waitUntil(lambda: "s/step" in w.status.value, timeout=120_000)
    per_step = float(w.status.value.split(" s/step")[0].split()[-1])
    t0 = time.perf_counter()
    w.cancel()
    assert not w.cancel_button.enabled  # asked once: the saving and scoring that follow run to their end
    wait_done(w, timeout=120_000)
    waited = time.perf_counter() - t0
    # cancel is honoured at the next step; what follows is the final scoring and the save
    assert waited < 10 * max(per_step, 0.5) + 30
    assert (tmp_path / "models" / "cancelled.pt").is_file()
    assert w.status.value == "stopped early (Cancel): the model so far was saved"
    # the bar shows how far the training got, not a finished run
    assert w.progress.maximum() == 10_000 and 0 < w.progress.value() < 100


def test_a_cancel_after_the_last_step_is_reported_as_done(setup, qtbot, monkeypatch, wait_done):
    import threading

    viewer, w, tmp_path = setup
    monkeypatch.setitem(ft.PRESETS, "quick", Preset(3, 0, "test", patch_size=32, batch_size=2))
    monkeypatch.setattr(ft, "RETUNE_GRID", {"fg_threshold": [0.4, 0.5]})
    cancelled, tune = threading.Event(), ft.tune_postprocess

    def tune_once_cancelled(*args, **kwargs):  # the training is over: Cancel comes while the model is tuned
        cancelled.wait(60)
        return tune(*args, **kwargs)

    monkeypatch.setattr(ft, "tune_postprocess", tune_once_cancelled)
    w.image_layer.value, w.labels_layer.value = viewer.layers["img"], viewer.layers["ann"]
    w.add_pair()
    w.name.value = "late"
    w.run()
    qtbot.waitUntil(lambda: "tuning the post-processing" in w.status.value, timeout=120_000)
    w.cancel()
    cancelled.set()
    wait_done(w, timeout=120_000)
    assert (tmp_path / "models" / "late.pt").is_file()
    assert w.status.value.startswith("done: 3 steps in ") and "stopped early" not in w.status.value
    assert w.status.value.endswith("(Cancel came after the last step)")


def test_bad_layer_choices_rejected_before_work(setup, monkeypatch):
    viewer, w, _ = setup
    assert w.figure.axes and not w.figure.axes[0].lines  # themed empty axes before any run, not a white box
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.finetune.show_error", errors.append)
    viewer.add_labels(np.zeros((128, 128), np.int32), name="empty")
    viewer.add_labels(np.ones((64, 64), np.int32), name="small")
    viewer.add_image(np.zeros((128, 128, 3), np.uint8), name="rgb", rgb=True)
    viewer.add_image(np.zeros((2, 128, 128), np.uint8), name="stack")
    holes = np.asarray(viewer.layers["img"].data, np.float32)
    holes[5:9] = np.nan
    viewer.add_image(holes, name="nan")
    # a mask named for another field (its image not open), of the same size as "img": not a pair
    viewer.add_labels(np.asarray(viewer.layers["ann"].data), name="other_m", metadata={"source_layer": "other"})
    for image, labels, match in (("img", "empty", "empty"), ("img", "small", "differ in shape"),
                                 ("rgb", "ann", "RGB"), ("stack", "ann", "dimensions"), ("nan", "ann", "NaN"),
                                 ("img", "other_m", "belongs to the image 'other'")):
        w.image_layer.value, w.labels_layer.value = viewer.layers[image], viewer.layers[labels]
        w.add_pair()
        assert match in errors[-1]
    assert w.pair_list.count() == 0
    w.run()
    assert "add at least one" in errors[-1] and w.job.worker is None
    assert w.status.value == "not started: add at least one (image, labels) pair you annotated."


def test_a_pair_whose_particles_all_lie_in_the_info_bar_is_refused_by_name(setup, monkeypatch):
    """Labels painted only over the microscope's info bar: training crops the bar away, and says so."""
    from napari_nanogan.data.procedural import render_sem
    from napari_nanogan.io.infobar import detect_info_bar

    viewer, w, _ = setup
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.finetune.show_error", errors.append)
    labels = particle_labels((200, 240), n_particles=25, mean_diameter=18, seed=3)
    image = render_sem(labels, seed=4, info_bar_rows=24)
    assert detect_info_bar(image) is not None
    painted = np.zeros(image.shape, np.int32)  # the bar's 24 rows are added below the specimen's 200
    painted[205:220, 100:130] = 1  # over the bar only
    viewer.add_image(image, name="barred")
    viewer.add_labels(painted, name="barred_m")
    w.image_layer.value, w.labels_layer.value = viewer.layers["barred"], viewer.layers["barred_m"]
    assert w.add_pair(), errors
    w.run()
    assert "info bar" in errors[-1] and "barred" in errors[-1] and w.job.worker is None


def test_a_model_better_before_any_training_step_says_where_its_gain_came_from(setup, tmp_path):
    from napari_nanogan.training.finetune import FinetuneResult

    viewer, w, _ = setup
    scores = ({"iou": 0.80, "f1": 0.50}, {"iou": 0.81, "f1": 0.55})
    w._on_result(FinetuneResult(tmp_path / "m.pt", *scores, steps=0, seconds=30.0, verdict="better", rough=True,
                                stopped=True))
    assert "retuned post-processing alone (no training step ran)" in w.result.value
    w._on_result(FinetuneResult(tmp_path / "m.pt", *scores, steps=400, seconds=60.0, verdict="better"))
    assert f"better than {w.base.value} on your held-out rows: choose it in the Segment panel" in w.result.value


def test_a_rough_or_tied_result_does_not_recommend_the_model(setup, tmp_path):
    from napari_nanogan.training.finetune import FinetuneResult, judge

    viewer, w, _ = setup
    tied = ({"iou": 0.886, "f1": 0.500}, {"iou": 0.888, "f1": 0.500})  # a cancelled run's scores, as a user met them
    w._on_result(FinetuneResult(tmp_path / "m.pt", *tied, steps=16, seconds=30.0, verdict=judge(*tied), rough=True,
                                stopped=True))
    assert f"no clear difference from {w.base.value} on your held-out rows: keep segmenting with" in w.result.value
    assert "choose it" not in w.result.value
    w._on_result(FinetuneResult(tmp_path / "m.pt", {"iou": 0.8, "f1": 0.5}, {"iou": 0.8, "f1": 0.6}, steps=16,
                                seconds=30.0, verdict="better", rough=True))
    assert "the scores are rough" in w.result.value and "check it on another annotated image" in w.result.value


def test_the_time_left_is_the_trainings_and_says_what_follows_it():
    from napari_nanogan.training.loop import TrainProgress
    from napari_nanogan.widgets.finetune import FinetuneWidget

    done, total, text = FinetuneWidget._describe(TrainProgress(10, 100, {"total": 1.0}, 6.0, 0.6, stage="training"))
    assert (done, total) == (10, 100)
    assert text.endswith("step 10 of 100, 0.6 s/step, about 0.9 min of training left, then tuning and scoring")
