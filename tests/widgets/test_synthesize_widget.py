import numpy as np
import pytest
import torch

from napari_nanogan.config import GeneratorConfig
from napari_nanogan.models.checkpoint import save_checkpoint
from napari_nanogan.models.style_unet import StyleUNet
from napari_nanogan.widgets.synthesize import SynthesizeWidget


@pytest.fixture
def gen_path(tmp_path):
    torch.manual_seed(0)
    cfg = GeneratorConfig(base_channels=8, depth=3, style_dim=16, mapping_layers=2)
    path = tmp_path / "g.pt"
    save_checkpoint(path, {"kind": "generator", "config": cfg.to_dict(), "state_dict": StyleUNet(cfg).state_dict(), "provenance": {}})
    return path


@pytest.fixture
def widget(make_napari_viewer, gen_path):
    viewer = make_napari_viewer()
    w = SynthesizeWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.model.choices = [str(gen_path)]
    w.model.value = str(gen_path)
    return viewer, w


def test_designer_to_images_with_mask(widget, qtbot, wait_done):
    viewer, w = widget
    w.source.value = "designer"
    w.width.value, w.height.value, w.count.value, w.median_nm.value = 96, 64, 8, 80.0
    w.n.value = 2
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: any(layer.name.endswith("mask") for layer in viewer.layers), timeout=10_000)
    images = [layer for layer in viewer.layers if layer.name.startswith("synthetic") and not layer.name.endswith("mask")]
    masks = [layer for layer in viewer.layers if layer.name.endswith("mask")]
    assert len(images) == 2 and len(masks) == 1
    assert images[0].data.shape == (64, 96) and masks[0].data.shape == (64, 96)
    assert tuple(images[0].scale) == pytest.approx((7.344, 7.344)) == tuple(masks[0].scale)
    assert not np.array_equal(images[0].data, images[1].data)


def test_painted_labels_layer_and_bad_layers(widget, qtbot, monkeypatch, wait_done):
    viewer, w = widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.synthesize.show_error", errors.append)
    w.source.value = "Labels layer"
    w.run()
    assert errors and "choose a Labels layer" in errors[-1]
    viewer.add_labels(np.zeros((2, 40, 40), np.int32), name="3d")
    w.labels_layer.value = viewer.layers["3d"]
    w.run()
    assert "3D" in errors[-1] and w.status.value.startswith("not started:") and "3D" in w.status.value
    negative = np.zeros((48, 48), np.int32)
    negative[5:9, 5:9] = -3
    viewer.add_labels(negative, name="signed")
    w.labels_layer.value = viewer.layers["signed"]
    w.run()
    assert w.job.worker is None and w.status.value.startswith("not started: signed:") and "negative" in errors[-1]
    painted = np.zeros((48, 48), np.int32)
    painted[10:20, 10:20] = 1
    viewer.add_labels(painted, name="painted")
    w.labels_layer.value = viewer.layers["painted"]
    w.n.value = 1
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic painted #0" in viewer.layers, timeout=10_000)
    assert viewer.layers["synthetic painted #0"].data.shape == (48, 48)
    assert w.status.value == "1 image from painted"
    viewer.add_labels(painted, name="oblong", scale=(4.0, 2.0), units=("nm", "nm"))  # no one pixel size in nm:
    w.labels_layer.value = viewer.layers["oblong"]  # the images keep the layer's own scale, on top of it
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic oblong #0" in viewer.layers, timeout=10_000)
    for name in ("synthetic oblong #0", "synthetic oblong mask"):
        assert tuple(viewer.layers[name].scale) == pytest.approx((4.0, 2.0)), name
        assert [str(u) for u in viewer.layers[name].units] == ["nanometer", "nanometer"], name
    viewer.add_labels(np.zeros((48, 48), np.int32), name="blank")  # nothing painted yet: said, not refused
    w.labels_layer.value = viewer.layers["blank"]
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic blank #0" in viewer.layers, timeout=10_000)
    assert "holds no particle" in w.status.value
    viewer.add_labels(painted, name="painted mask")  # a mask layer named as one: not "... mask mask"
    w.labels_layer.value = viewer.layers["painted mask"]
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic painted mask #0" in viewer.layers, timeout=10_000)
    assert "synthetic painted mask" in viewer.layers and "synthetic painted mask mask" not in viewer.layers


def test_fit_designer_to_layer(widget):
    from napari_nanogan.config import MaskDesign
    from napari_nanogan.data.designer import design_mask

    viewer, w = widget
    labels = design_mask(MaskDesign(height=200, width=200, pixel_size_nm=2.0, median_nm=30.0, count=30, seed=2))
    viewer.add_labels(labels, name="annotated", scale=(2.0, 2.0), metadata={"pixel_size_nm": 2.0})
    w.fit_layer.value = viewer.layers["annotated"]
    w.fit_to_layer()
    assert w.median_nm.value == pytest.approx(30.0, rel=0.2) and w.pixel_size.value == pytest.approx(2.0)
    assert "fitted" in w.status.value


def test_images_arrive_as_they_are_made_and_cancel_keeps_them(widget, qtbot, wait_done, tmp_path, monkeypatch):
    import time

    import tifffile

    import napari_nanogan.synthesis as synthesis

    real, calls = synthesis.synthesize, []
    # each image takes 50 ms more, as a large one would: the run is still going when it is cancelled
    monkeypatch.setattr(synthesis, "synthesize", lambda *a, **k: calls.append(1) or time.sleep(0.05) or real(*a, **k))
    viewer, w = widget
    mask = np.zeros((64, 64), np.uint16)
    mask[10:30, 10:30], mask[35:50, 35:60] = 1, 2
    tifffile.imwrite(tmp_path / "m.tif", mask, resolution=(1e7 / 5.0, 1e7 / 5.0), resolutionunit="CENTIMETER")
    w.source.value = "mask file"
    w.mask_file.value = tmp_path / "m.tif"
    w.n.value = 64
    w.run()
    qtbot.waitUntil(lambda: "synthetic m #1" in viewer.layers, timeout=20_000)
    assert tuple(viewer.layers["synthetic m #0"].scale) == pytest.approx((5.0, 5.0))  # the file's pixel size
    made = sum(layer.name.startswith("synthetic m #") for layer in viewer.layers)
    w.cancel()
    wait_done(w, timeout=5_000)
    kept = [layer for layer in viewer.layers if layer.name.startswith("synthetic m #")]
    # the run stops well before its end (64 images take 3.2 s here); the images shown at Cancel are kept, and
    # none arrives after it (those made but still on their way are dropped): counts, not times
    assert len(kept) == made < 32 and w.status.value.startswith("cancelled")
    assert w.status.value == f"cancelled: {made} images kept"
    assert len(calls) >= len(kept)  # the slowed synthesis is the one the panel ran
    assert "synthetic m mask" in viewer.layers


def test_panels_fit_a_1000_px_screen(make_napari_viewer):
    from napari_nanogan.widgets.finetune import FinetuneWidget

    viewer = make_napari_viewer()
    for panel in (SynthesizeWidget(viewer), FinetuneWidget(viewer)):
        viewer.window.add_dock_widget(panel)
        assert panel.sizeHint().height() <= 950, type(panel).__name__


def test_the_labels_pickers_start_on_the_newest_2d_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((40, 40), np.int32), name="older")
    newest = viewer.add_labels(np.zeros((40, 40), np.int32), name="newest")
    viewer.add_labels(np.zeros((2, 40, 40), np.int32), name="stack")  # 3D: not a mask to synthesize from
    w = SynthesizeWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert w.labels_layer.value is newest and w.fit_layer.value is newest
    empty = make_napari_viewer()
    w = SynthesizeWidget(empty)
    empty.window.add_dock_widget(w)
    assert w.labels_layer.value is None
    painted = empty.add_labels(np.zeros((40, 40), np.int32), name="painted")
    assert w.labels_layer.value is painted and w.fit_layer.value is painted


def test_a_mask_file_gives_its_own_pixel_size_or_takes_one_typed(widget, qtbot, wait_done, tmp_path):
    import tifffile
    from PIL import Image

    viewer, w = widget
    mask = np.zeros((48, 48), np.uint8)
    mask[10:20, 10:20], mask[25:40, 25:40] = 1, 2
    tifffile.imwrite(tmp_path / "own.tif", mask, resolution=(1e7 / 0.01234, 1e7 / 0.01234), resolutionunit="CENTIMETER")
    Image.fromarray(mask).save(tmp_path / "drawn.png")  # a PNG records no pixel size
    w.source.value, w.n.value = "mask file", 1
    w.mask_file.value = tmp_path / "own.tif"
    assert w.mask_pixel_size.value == pytest.approx(0.012, abs=1e-9)  # the file's own, as the field can show it
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic own #0" in viewer.layers, timeout=10_000)
    for name in ("synthetic own #0", "synthetic own mask"):
        layer = viewer.layers[name]
        assert tuple(layer.scale) == pytest.approx((0.01234, 0.01234)), name  # used exactly
        assert [str(u) for u in layer.units] == ["nanometer", "nanometer"], name
    w.mask_file.value = tmp_path / "drawn.png"
    assert w.mask_pixel_size.value == 0.0
    w.mask_pixel_size.value = 2.5  # typed for the PNG
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "synthetic drawn #0" in viewer.layers, timeout=10_000)
    image = viewer.layers["synthetic drawn #0"]
    assert tuple(image.scale) == pytest.approx((2.5, 2.5)) and image.metadata["pixel_size_nm"] == 2.5
    w.mask_file.value = tmp_path / "own.tif"  # a value typed for another file is not used for this one
    assert w.mask_pixel_size.value == pytest.approx(0.012, abs=1e-9)
