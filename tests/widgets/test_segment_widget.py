import numpy as np
import pytest

from napari_nanogan.widgets.segment import SegmentWidget, drawn_diameter


@pytest.fixture
def widget(make_napari_viewer, tiny_checkpoint):
    viewer = make_napari_viewer()
    w = SegmentWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.model.choices = [str(tiny_checkpoint)]
    w.model.value = str(tiny_checkpoint)
    w.tile.value = 128
    return viewer, w


def test_segment_widget_adds_labels_with_scale(widget, sem_like, qtbot, wait_done):
    viewer, w = widget
    image, _ = sem_like
    layer = viewer.add_image(image, name="sem", scale=(7.344, 7.344), translate=(10.0, 20.0))
    w.image_layer.value = layer
    w.run()
    assert w.job.worker is not None and not w.run_button.enabled
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["sem particles"]
    assert labels.data.shape == image.shape
    assert tuple(labels.scale) == (7.344, 7.344) and tuple(labels.translate) == (10.0, 20.0)
    assert labels.data[image.shape[0] - 24 :].max() == 0  # info bar excluded
    assert w.run_button.enabled and not w.cancel_button.enabled


def test_labels_lie_over_a_rotated_image_in_micrometres_and_know_its_pixel_size(widget, sem_like, qtbot, wait_done):
    viewer, w = widget
    layer = viewer.add_image(sem_like[0], name="um", scale=(0.005, 0.005), units=("um", "um"), rotate=30)
    w.image_layer.value = layer
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "um particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["um particles"]
    np.testing.assert_allclose(labels.affine.affine_matrix, layer.affine.affine_matrix)
    np.testing.assert_allclose(labels.rotate, layer.rotate)
    corner = (100.0, 50.0)  # one pixel of each lies at the same place in the world
    np.testing.assert_allclose(labels.data_to_world(corner), layer.data_to_world(corner))
    assert labels.metadata["pixel_size_nm"] == pytest.approx(5.0)
    assert [str(u) for u in labels.units] == [str(u) for u in layer.units]


def test_segment_widget_says_when_the_particles_were_found_on_the_inverted_image(widget, sem_like, qtbot, wait_done,
                                                                                 monkeypatch):
    from napari_nanogan import config
    from napari_nanogan.segmentation import pipeline

    viewer, w = widget
    monkeypatch.setattr(config, "POLARITY_UNSURE_BELOW", 2.0)  # always unsure, and the inverted image always wins
    monkeypatch.setattr(pipeline, "polarity_verdict", lambda found, flipped: True)
    w.image_layer.value = viewer.add_image(sem_like[0], name="sem")
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    assert viewer.layers["sem particles"].metadata["grey_levels_inverted"] is True
    assert "grey levels inverted" in w.status.value


def test_segment_widget_rejects_3d_layer_without_work(widget, monkeypatch):
    viewer, w = widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.segment.show_error", errors.append)
    layer = viewer.add_image(np.zeros((3, 64, 64), np.uint8), name="stack")
    w.image_layer.value = layer
    w.run()
    assert w.job.worker is None and errors and "3 dimensions" in errors[0]
    assert w.status.value.startswith("not started:") and "3 dimensions" in w.status.value  # not a last result
    w.image_layer.value = viewer.add_image(np.zeros((3, 200), np.uint8), name="sliver")
    w.run()
    assert w.job.worker is None and w.status.value.startswith("not started:") and "8+ pixels" in w.status.value


def test_segment_widget_no_layer(widget, monkeypatch):
    viewer, w = widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.segment.show_error", errors.append)
    w.run()
    assert errors and "open an image" in errors[0]


def test_segment_widget_cancel(widget, qtbot, wait_done):
    import time

    viewer, w = widget
    layer = viewer.add_image(np.random.default_rng(0).integers(0, 255, (1100, 1100), dtype=np.uint8), name="big")
    w.image_layer.value = layer
    w.tile.value = 64
    w.run()
    qtbot.waitUntil(lambda: "tile" in w.status.value, timeout=30_000)
    t0 = time.perf_counter()
    w.cancel()
    wait_done(w, timeout=30_000)
    assert time.perf_counter() - t0 < 2.0  # it stops at the next tile, not after the whole image
    assert "big particles" not in viewer.layers
    assert w.status.value == "cancelled" and w.run_button.enabled


def test_segment_widget_uses_edited_info_bar_shape(widget, sem_like, qtbot, wait_done):
    viewer, w = widget
    image, _ = sem_like
    layer = viewer.add_image(image, name="sem", scale=(2.0, 2.0))
    # the user drew (or moved) the bar to cover rows 150..223 (world units: x2)
    viewer.add_shapes([np.array([[300.0, 0.0], [300.0, 480.0], [448.0, 480.0], [448.0, 0.0]])], shape_type="rectangle",
                      name="sem info bar")
    w.image_layer.value = layer
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["sem particles"]
    assert labels.metadata["info_bar_rows"] == (150, 224)
    assert labels.data[150:].max() == 0


def test_segment_widget_diameter_in_layer_units(widget, sem_like, qtbot, network_input_shapes, wait_done):
    viewer, w = widget
    image, _ = sem_like
    plain = viewer.add_image(image, name="plain")
    w.image_layer.value = plain
    assert w.diameter.label.startswith("particle diameter (px")
    layer = viewer.add_image(image, name="sem", scale=(7.344, 7.344), units=("nm", "nm"))
    w.image_layer.value = layer
    assert w.diameter.label.startswith("particle diameter (nm")
    assert w.diameter_px(layer) == "auto" and not w.diameter.enabled  # estimating is the default
    w.auto_diameter.value = False
    assert w.diameter_px(layer) is None and w.diameter.enabled  # 0 = off
    w.diameter.value = 4 * 7.344 * 24  # 4x the model's 24 px, in nm
    assert w.diameter_px(layer) == pytest.approx(96.0, rel=1e-3)  # the box keeps 2 decimals
    seen = network_input_shapes
    w.run()
    w.diameter.value = 0.0  # changed while it runs: the layer still records what the run used
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["sem particles"]
    assert labels.data.shape == image.shape
    assert labels.metadata["particle_diameter_px"] == pytest.approx(96.0, rel=1e-3)
    assert seen and seen[0][1] == round(image.shape[1] / 4)  # the network saw a 4x smaller image
    assert "particle diameter 96 px (705 nm) as given" in w.status.value  # the status says the diameter used
    assert w.status.value.endswith(f"model {w.model.value}")  # and names the model chosen


def test_segment_widget_diameter_on_pixels_that_are_not_square(widget, sem_like):
    """A diameter typed in nm on 4 x 1 nm pixels is the equal-area one: 2 nm a pixel, not the x side's 1."""
    viewer, w = widget
    image, _ = sem_like
    layer = viewer.add_image(image, name="oblong", scale=(4.0, 1.0), units=("nm", "nm"))
    w.image_layer.value = layer
    w.auto_diameter.value = False
    w.diameter.value = 60.0
    assert w.diameter_px(layer) == pytest.approx(30.0)


def test_segment_widget_estimates_the_diameter(widget, sem_like, qtbot, sized_tiny_checkpoint, wait_done):
    viewer, w = widget
    image, _ = sem_like
    sized = sized_tiny_checkpoint  # estimates 72 px
    w.model.choices = [str(sized)]
    w.model.value = str(sized)
    layer = viewer.add_image(image, name="sem", scale=(2.0, 2.0), units=("nm", "nm"))
    w.image_layer.value = layer
    w.auto_diameter.value = True
    assert not w.diameter.enabled and w.diameter_px(layer) == "auto"
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["sem particles"]
    assert labels.metadata["particle_diameter_px"] == pytest.approx(72.0, rel=1e-4)
    assert labels.metadata["particle_diameter_estimated"] is True
    assert "estimated particle diameter 72 px (144 nm)" in w.status.value
    w.auto_diameter.value = False
    assert w.diameter.enabled


def test_segment_widget_model_without_size_model_segments_at_own_scale_and_says_so(
        widget, sem_like, qtbot, monkeypatch, wait_done, network_input_shapes):
    """Estimating is the panel's default; a model that cannot (a fine-tuned one, say) still segments."""
    viewer, w = widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.segment.show_error", errors.append)
    image = sem_like[0]
    w.image_layer.value = viewer.add_image(image, name="sem")
    assert w.auto_diameter.value
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    assert not errors
    model = w.model.value
    assert f"own scale: no diameter estimate ({model} has no size model)" in w.status.value
    assert w.status.value.endswith(f"model {model}")
    assert "particle_diameter_px" not in viewer.layers["sem particles"].metadata
    assert network_input_shapes[-1][1] >= image.shape[1]  # not resized


def test_segment_widget_defaults_to_auto_and_says_what_it_chose(make_napari_viewer, sem_like, qtbot, wait_done):
    from conftest import shipped_model_available

    if not shipped_model_available():
        pytest.skip("shipped weights not installed")
    viewer = make_napari_viewer()
    w = SegmentWidget(viewer)
    assert w.model.value == "auto"
    image, _ = sem_like
    w.image_layer.value = viewer.add_image(255 - image[:176], name="tem")  # dark particles on bright: TEM-like
    w.run()
    wait_done(w)
    qtbot.waitUntil(lambda: "tem particles" in viewer.layers, timeout=10_000)
    meta = viewer.layers["tem particles"].metadata
    assert meta["model"] == "auto" and meta["model_used"] == "default"
    assert w.status.value.endswith("model default")


def test_a_long_status_message_wraps_instead_of_widening_the_panel(widget):
    viewer, w = widget
    w.status.value = "short"
    short = w.status.native.minimumSizeHint().width()
    w.status.value = "229 particles; info bar rows 712-767 excluded; estimated particle diameter 26 px (188 nm); " * 3
    assert w.status.native.wordWrap()
    assert w.status.native.minimumSizeHint().width() < 4 * max(short, 60)


def test_segment_widget_segments_a_lazy_layer_block_by_block(widget, sem_like, qtbot, wait_done):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    viewer, w = widget
    image = np.tile(sem_like[0][:176], (2, 2))
    layer = viewer.add_image(da.from_array(image, chunks=128), name="lazy", scale=(5.0, 5.0))
    w.image_layer.value = layer
    w.auto_diameter.value = False
    w.run()
    assert w._out is not None and str(w._out).endswith("lazy_labels.zarr")
    wait_done(w)
    qtbot.waitUntil(lambda: "lazy particles" in viewer.layers, timeout=10_000)
    labels = viewer.layers["lazy particles"]
    assert not isinstance(labels.data, np.ndarray) and labels.data.shape == image.shape
    assert tuple(labels.scale) == (5.0, 5.0) and labels.metadata["labels_store"] == str(w._out)
    assert "labels in" in w.status.value and w._out.is_dir()


def test_the_image_picker_starts_on_the_newest_2d_image_and_keeps_the_users_choice(make_napari_viewer):
    viewer = make_napari_viewer()
    first = viewer.add_image(np.zeros((32, 32), np.uint8), name="first")
    newest = viewer.add_image(np.zeros((32, 32), np.uint8), name="newest")
    viewer.add_image(np.zeros((3, 32, 32), np.uint8), name="stack")  # a stack: not what the panel segments
    w = SegmentWidget(viewer)
    viewer.window.add_dock_widget(w)
    assert w.image_layer.value is newest
    opened = viewer.add_image(np.zeros((32, 32), np.uint8), name="opened")  # nothing chosen: the image just opened
    assert w.image_layer.value is opened
    viewer.add_labels(np.zeros((32, 32), np.int32), name="opened particles")  # no image: the picker stays
    assert w.image_layer.value is opened
    w.image_layer.native.activated.emit(w.image_layer.native.currentIndex())  # choosing the layer shown: a choice
    viewer.add_image(np.zeros((32, 32), np.uint8), name="after the choice")
    assert w.image_layer.value is opened
    w.image_choice.forget_choice()  # following the newest again
    assert w.image_layer.value.name == "after the choice"
    synthetic = viewer.add_image(np.zeros((32, 32), np.uint8), name="synthetic", metadata={"generator": "default"})
    assert w.image_layer.value.name == "after the choice"  # a panel's output (Synthesize) is offered, not shown
    assert synthetic in w.image_layer.choices
    assert SegmentWidget(viewer).image_layer.value.name == "after the choice"  # by a panel opened after it too
    w.image_layer.value = first  # the user's choice stays, whatever is added
    later = viewer.add_image(np.zeros((32, 32), np.uint8), name="later")
    assert w.image_layer.value is first
    viewer.layers.remove(first)  # the chosen layer leaves: the newest fitting one again
    assert w.image_layer.value is later


def test_the_small_particle_pass_follows_its_checkbox(widget, monkeypatch, qtbot, wait_done):
    """The panel passes its "find small particles beside large ones" box to the segmentation, and records it."""
    import napari_nanogan.segmentation as segmentation

    viewer, w = widget
    seen = []
    real = segmentation.segment_steps
    monkeypatch.setattr(segmentation, "segment_steps", lambda *a, **k: seen.append(k["small_pass"]) or real(*a, **k))
    layer = viewer.add_image(np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8), name="noise")
    w.image_layer.value = layer
    assert w.small_pass.value
    for ticked in (True, False):
        w.small_pass.value = ticked
        w.run()
        wait_done(w)
        qtbot.waitUntil(lambda: "noise particles" in viewer.layers, timeout=10_000)
        assert viewer.layers["noise particles"].metadata["small_pass"] is ticked
        viewer.layers.remove("noise particles")
    assert seen == [True, False]


def test_the_diameter_is_taken_from_lines_drawn_across_particles(widget, monkeypatch):
    """An unfamiliar image's scale, given by drawing: the median of the lines (and ellipses) on a Shapes layer,
    in the image's units; the info bar's rectangle never counts."""
    viewer, w = widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.segment.show_error", errors.append)
    layer = viewer.add_image(np.zeros((200, 300), np.uint8), name="sem", scale=(2.0, 2.0), units=("nm", "nm"))
    w.image_layer.value = layer
    assert w.diameter_from_lines() is None and "draw a line" in errors[-1] and w.auto_diameter.value
    # drawn in world coordinates (nm) on a layer of scale 1: lines of 40, 50 and 90 nm, an ellipse of 40 x 60 nm
    lines = [np.array([[10, 10], [10, 50]]), np.array([[30, 10], [60, 50]]), np.array([[80, 0], [80, 90]])]
    drawn = viewer.add_shapes(lines, shape_type="line", name="typical")
    drawn.add_ellipses(np.array([[100, 100], [100, 160], [140, 160], [140, 100]]))
    viewer.add_shapes(np.array([[[180, 0], [180, 600], [200, 600], [200, 0]]]), shape_type="rectangle",
                      name="sem info bar")  # newer and selected, no line: passed over
    assert w.diameter_from_lines() == pytest.approx(50.0)  # median of 40, 50, 90 and 50
    assert not w.auto_diameter.value and w.diameter.value == pytest.approx(50.0)
    assert w.diameter_px(layer) == pytest.approx(25.0)  # 50 nm at 2 nm/px
    assert "median of 4 shapes drawn on 'typical'" in w.status.value and "50 nm" in w.status.value
    # a Shapes layer of its own scale (as napari's "new shapes" button makes it for a scaled image): world lengths
    scaled = viewer.add_shapes([np.array([[0, 0], [0, 10]])], shape_type="line", name="scaled", scale=(2.0, 2.0))
    assert w.diameter_from_lines() == pytest.approx(20.0)
    # a tiny drawn length is used exactly, though the field shows it rounded
    scaled.data = [np.array([[0, 0], [0, 0.00617]])]
    assert w.diameter_from_lines() == pytest.approx(0.01234) and w.diameter.value == pytest.approx(0.01)
    assert w.diameter_px(layer) == pytest.approx(0.00617)
    # the image a diameter was drawn on stays chosen: one opened after does not take its place
    plain = viewer.add_image(np.zeros((200, 300), np.uint8), name="plain")
    assert w.image_layer.value is layer and not w.auto_diameter.value
    # another image in other units, chosen: the diameter given means nothing there; estimated again, said so
    w.image_layer.value = plain
    assert w.auto_diameter.value and w.diameter.value == 0 and "estimated again" in w.status.value
    w.image_layer.value = layer
    assert "estimated again" not in w.status.value  # said of the other image: gone with it


def test_a_second_run_call_during_a_run_starts_nothing_and_a_cancelled_lazy_run_leaves_no_store(
        widget, sem_like, qtbot, wait_done):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("zarr")
    viewer, w = widget
    layer = viewer.add_image(sem_like[0], name="sem")
    w.image_layer.value = layer
    w.run()
    first = w.job.worker
    w.run()  # (the button is disabled; a script's second call must not start a second worker)
    assert w.job.worker is first
    wait_done(w)
    qtbot.waitUntil(lambda: "sem particles" in viewer.layers, timeout=10_000)
    assert "sem particles [1]" not in viewer.layers
    big = viewer.add_image(da.from_array(np.tile(sem_like[0][:176], (8, 8)), chunks=256), name="lazy")
    w.image_layer.value = big
    w.auto_diameter.value = False
    w.tile.value = 64
    w.run()
    store = w._out
    assert store.parent.is_dir()  # its own folder, made for this run
    w.cancel()
    wait_done(w, timeout=60_000)
    assert w.status.value.startswith("cancelled") and not store.parent.exists()


def test_calibrating_from_the_scale_bar_moves_the_info_bar_outline_with_the_image(widget, sem_like, tmp_path):
    """The reader's info-bar rectangle takes the image's new scale: segmentation still excludes the bar's rows."""
    from PIL import Image

    from napari_nanogan.widgets.segment import info_bar_from_shapes

    viewer, w = widget
    image = sem_like[0]  # its data bar holds a scale bar of 30 px
    Image.fromarray(image).save(tmp_path / "field.png")
    viewer.open(str(tmp_path / "field.png"), plugin="napari-nanogan")
    layer = viewer.layers["field"]
    before = info_bar_from_shapes(viewer, layer, image.shape[0])
    w.image_layer.value = layer
    w.scale_bar.value = "300 nm"
    assert w.pixel_size_from_scale_bar() == pytest.approx(10.0)
    after = info_bar_from_shapes(viewer, layer, image.shape[0])
    assert before is not None and (after.start, after.stop) == (before.start, before.stop)


def test_pixel_size_from_the_scale_bar_found_or_drawn(widget):
    """A PNG-like image without a pixel size gets one from its scale bar and the length typed; the bar found
    is outlined to check, and a line moved onto the bar (or drawn) is taken instead."""
    from napari_nanogan.widgets._layers import layer_pixel_size_nm

    viewer, w = widget
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(110, 6, (200, 300)), 1, 254).astype(np.uint8)
    image[170:174, 180:260] = 255  # a white bar of 80 px
    image[0, 0] = 0
    layer = viewer.add_image(image, name="figure")
    w.image_layer.value = layer
    assert w.diameter.label.startswith("particle diameter (px")
    w.scale_bar.value = "0.4 um"
    assert w.pixel_size_from_scale_bar() == pytest.approx(5.0)
    assert tuple(layer.scale) == pytest.approx((5.0, 5.0)) and [str(u) for u in layer.units] == ["nanometer"] * 2
    assert w.diameter.label.startswith("particle diameter (nm") and "80 px = 400 nm" in w.status.value
    line = viewer.layers["figure scale bar"]
    assert np.allclose(line.data[0], [[171.5, 179.5], [171.5, 259.5]])
    line.add_lines(np.array([[171.5, 179.5], [171.5, 219.5]]))  # a line the user drew there: the newest counts
    assert w.pixel_size_from_scale_bar() == pytest.approx(10.0)
    assert "the line on 'figure scale bar'" in w.status.value
    assert tuple(line.scale) == pytest.approx((10.0, 10.0))  # the line stays on the bar
    line.data = []  # deleted: found again, on the same layer
    assert w.pixel_size_from_scale_bar() == pytest.approx(5.0) and len(line.data) == 1
    assert [lay.name for lay in viewer.layers].count("figure scale bar") == 1
    with pytest.raises(ValueError, match="draw a line across a typical particle"):
        drawn_diameter(viewer)  # the scale bar's line is no particle
    blank = viewer.add_image(np.full((60, 60), 90, np.uint8), name="blank")
    w.image_layer.value = blank
    assert w.pixel_size_from_scale_bar() is None and "no scale bar found" in w.status.value
    assert layer_pixel_size_nm(blank) is None
    w.scale_bar.value = "lots"
    assert w.pixel_size_from_scale_bar() is None and "'lots'" in w.status.value
    w.image_layer.value = layer
    w.scale_bar.value = "400"  # a bar's label has its unit: a bare number is taken as nm, and said so
    assert w.pixel_size_from_scale_bar() == pytest.approx(5.0)
    assert w.status.value.startswith("400 has no unit: taken as 400 nm (type the bar's label as it reads")


def test_calibrating_carries_lines_drawn_on_the_image_and_the_view_but_not_a_twin_images_layers(widget):
    viewer, w = widget
    rng = np.random.default_rng(1)
    image = np.clip(rng.normal(110, 6, (200, 300)), 1, 254).astype(np.uint8)
    image[170:174, 180:260] = 255  # a bar of 80 px
    image[0, 0] = 0
    layer = viewer.add_image(image, name="figure", scale=(3.0, 3.0), units=("nm", "nm"))
    drawn = viewer.add_shapes([np.array([[50.0, 50.0], [50.0, 74.0]])], shape_type="line", name="my lines",
                              scale=(3.0, 3.0))  # a line drawn across a particle of 24 px
    camera = getattr(getattr(viewer, "scene", None), "camera", None) or viewer.camera
    camera.center, camera.zoom = (0.0, 300.0, 450.0), 2.0  # data pixel (100, 150) in the middle
    w.image_layer.value = layer
    w.scale_bar.value = "400 nm"
    assert w.pixel_size_from_scale_bar() == pytest.approx(5.0)
    assert "it replaces the 3 nm the image had" in w.status.value
    assert tuple(drawn.scale) == pytest.approx((5.0, 5.0))  # the lines drawn on it follow it
    assert tuple(camera.center)[-2:] == pytest.approx((500.0, 750.0)) and camera.zoom == pytest.approx(1.2)
    w.diameter_from_lines()
    assert w.diameter.value == pytest.approx(120.0)  # 24 px at 5 nm
    twin = viewer.add_image(image, name="figure 2")  # two uncalibrated copies: only its own layers follow each
    twin_bar = viewer.add_shapes([np.array([[0.0, 0.0], [0.0, 5.0]])], shape_type="line", name="figure 2 info bar")
    other = viewer.add_shapes([np.array([[0.0, 0.0], [0.0, 5.0]])], shape_type="line", name="figure info bar [1]")
    layer.scale, layer.units = (1.0, 1.0), ("pixel", "pixel")
    viewer.layers.remove("figure scale bar")
    w.pixel_size_from_scale_bar()
    assert tuple(twin.scale) == (1.0, 1.0) and tuple(twin_bar.scale) == (1.0, 1.0) and tuple(other.scale) == (1.0, 1.0)
