import csv

import numpy as np
import pytest

from napari_nanogan.widgets._layers import layer_pixel_size_nm, layer_scale_problem
from napari_nanogan.widgets.measure import MeasureWidget


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    w = MeasureWidget(viewer)
    viewer.window.add_dock_widget(w)
    return viewer, w


def _labels():
    labels = np.zeros((100, 120), np.int32)
    labels[10:20, 10:30] = 1
    labels[40:60, 40:60] = 2
    labels[70:80, 0:10] = 3  # cut by the border
    return labels


def test_measure_widget_features_histogram_export(viewer_widget, tmp_path, wait_done):
    viewer, w = viewer_widget
    layer = viewer.add_labels(_labels(), name="particles", scale=(5.0, 5.0), metadata={"pixel_size_nm": 5.0})
    img = viewer.add_image(np.full((100, 120), 100, np.uint8), name="img")
    w.labels_layer.value = layer
    w.image_layer.value = img
    w.run()
    wait_done(w)
    assert list(layer.features["label"]) == [1, 2, 3]
    assert layer.features["ecd_nm"][1] == pytest.approx(np.sqrt(4 * 400 / np.pi) * 5)
    assert "D50" in w.summary.value and "nm" in w.summary.value and "1 cut" in w.summary.value
    assert "log-normal" not in w.summary.value  # 2 whole particles: too few to fit
    w.include_cut.value = True
    assert "log-normal fit:" in w.summary.value and "σg" in w.summary.value
    assert len(w.figure.axes[0].lines) == 4  # D10, D50, D90 and the fitted curve
    legend = w.figure.axes[0].get_legend()  # named as in the saved figure
    assert [t.get_text() for t in legend.get_texts()] == ["log-normal fit", "D10, D90", "D50"]
    assert w.summary.value.endswith("equivalent-circle diameter under 100 nm: 66.7 % by number")  # 2 of 3
    w.measure.value = "feret_max"  # the share is of the size chosen
    assert "\nmax Feret diameter under 100 nm: " in w.summary.value
    w.measure.value = "ecd"
    w.include_cut.value = False
    assert len(w.figure.axes) == 1 and len(w.figure.axes[0].patches) > 0
    w.measure.value = "circularity"
    assert "median" in w.summary.value and w.summary.value[-1].isdigit()  # a ratio: no unit
    w.measure.value = "area"
    assert w.summary.value.endswith("nm²")  # the others say theirs
    w.export(tmp_path / "t.csv")
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == 3 and rows[2]["touches_border"] == "true"
    assert (tmp_path / "t_summary.csv").is_file()


def test_measure_widget_pixels_when_unknown(viewer_widget, wait_done):
    viewer, w = viewer_widget
    layer = viewer.add_labels(_labels(), name="p")
    w.labels_layer.value = layer
    w.run()
    wait_done(w)
    assert "ecd_px" in layer.features.columns
    w.pixel_size.value = 2.0
    w.run()
    wait_done(w)
    assert layer.features["ecd_nm"][0] == pytest.approx(np.sqrt(4 * 200 / np.pi) * 2)


def test_a_layer_calibrated_after_it_was_chosen_is_measured_at_its_new_pixel_size(viewer_widget, wait_done):
    """The field shows the layer's own pixel size; a scale set since (a scale bar, by hand) is the one used."""
    viewer, w = viewer_widget
    layer = viewer.add_labels(_labels(), name="p", scale=(2.0, 2.0), units=("nm", "nm"))
    w.labels_layer.value = layer
    w.run()
    wait_done(w)
    first = layer.features["ecd_nm"][0]
    layer.scale, layer.units = (8.0, 8.0), ("nm", "nm")
    w.run()
    wait_done(w)
    assert w.pixel_size.value == pytest.approx(8.0) and layer.features["ecd_nm"][0] == pytest.approx(4 * first)


def test_layer_pixel_size_from_units(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_image(np.zeros((4, 4)), scale=(7.344, 7.344), units=("nm", "nm"))
    assert layer_pixel_size_nm(layer) == pytest.approx(7.344)
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)))) is None
    # any length unit napari knows, converted; 1 nm per pixel is a pixel size too
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)), scale=(0.0025, 0.0025), units=("um", "um"))) \
        == pytest.approx(2.5)
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)), scale=(1.0, 1.0), units=("nm", "nm"))) == 1.0
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)), scale=(3.0, 3.0), units=("angstrom",) * 2)) \
        == pytest.approx(0.3)
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)), scale=(2.0, 2.0))) is None  # no unit: no length
    assert layer_pixel_size_nm(viewer.add_image(np.zeros((4, 4)), scale=(2.0, 2.0), units=("second",) * 2)) is None
    oblong = viewer.add_image(np.zeros((4, 4)), scale=(2.5, 5.0), units=("nm", "nm"), name="oblong")
    assert layer_pixel_size_nm(oblong) is None and "not square" in layer_scale_problem(oblong)
    assert layer_scale_problem(layer) is None


def test_a_labels_layer_in_micrometres_is_measured_in_nm(viewer_widget, wait_done):
    viewer, w = viewer_widget
    layer = viewer.add_labels(_labels(), name="um", scale=(0.002, 0.002), units=("um", "um"))
    w.labels_layer.value = layer
    assert w.pixel_size.value == pytest.approx(2.0)  # the field shows the layer's own pixel size
    w.run()
    wait_done(w)
    assert layer.features["ecd_nm"][0] == pytest.approx(np.sqrt(4 * 200 / np.pi) * 2)


def test_hovering_a_particle_shows_its_own_row(viewer_widget, wait_done, tmp_path):
    viewer, w = viewer_widget
    labels = _labels()
    layer = viewer.add_labels(labels, name="p")
    w.labels_layer.value = layer
    w.run()
    wait_done(w)
    w.export(tmp_path / "t.csv")
    rows = {int(r["label"]): r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    for label in np.unique(labels)[1:]:
        y, x = np.argwhere(labels == label)[0]
        value = layer.get_status((float(y), float(x)), world=True)["value"]
        shown = dict(item.split(": ") for item in value.split("; ", 1)[1].split(", "))
        assert shown["label"] == rows[label]["label"] == str(label)
        assert float(shown["area_px2"]) == pytest.approx(float(rows[label]["area_px2"]))
        assert float(shown["ecd_px"]) == pytest.approx(float(rows[label]["ecd_px"]), rel=0.01)  # shown to 3 digits


def test_a_pixel_size_typed_for_one_layer_is_not_used_for_another_unseen(viewer_widget, wait_done):
    """2 nm typed for an uncalibrated PNG's labels was used for a calibrated layer measured next."""
    viewer, w = viewer_widget
    plain = viewer.add_labels(_labels(), name="png labels")
    calibrated = viewer.add_labels(_labels(), name="tif labels", scale=(7.344, 7.344),
                                   metadata={"pixel_size_nm": 7.344})
    w.labels_layer.value = plain
    assert w.pixel_size.value == 0.0
    w.pixel_size.value = 2.0  # typed for the PNG
    w.labels_layer.value = calibrated
    assert w.pixel_size.value == pytest.approx(7.344)
    w.run()
    wait_done(w)
    assert calibrated.features["ecd_nm"][1] == pytest.approx(np.sqrt(4 * 400 / np.pi) * 7.344)
    w.labels_layer.value = plain
    assert w.pixel_size.value == 0.0


def test_measure_widget_says_what_it_found_for_empty_labels_and_cut_particles(viewer_widget, wait_done):
    viewer, w = viewer_widget
    w.labels_layer.value = viewer.add_labels(np.zeros((50, 60), np.int32), name="empty")
    w.run()
    wait_done(w)
    assert w.summary.value == "n = 0: no particles to size"
    assert w.export_button.enabled and not w.plot_button.enabled  # an empty table exports; no histogram to save
    w.labels_layer.value = viewer.add_labels(_labels(), name="p")
    w.run()
    wait_done(w)
    assert "n = 2 (1 cut, excluded)" in w.summary.value and w.plot_button.enabled
    w.include_cut.value = True
    assert "n = 3 (1 cut, included)" in w.summary.value


def test_measure_widget_takes_the_grey_of_an_rgb_image(viewer_widget, wait_done):
    viewer, w = viewer_widget
    rgb = np.zeros((100, 120, 3), np.uint8)
    rgb[..., 1] = 200  # green: its grey level is not 0
    w.labels_layer.value = viewer.add_labels(_labels(), name="p")
    w.image_layer.value = viewer.add_image(rgb, name="figure", rgb=True)
    w.run()
    wait_done(w)
    assert w.labels_layer.value.features["mean_intensity"][0] > 100


def test_export_dialog_adds_the_csv_suffix_to_a_bare_name(viewer_widget, wait_done, tmp_path, monkeypatch):
    viewer, w = viewer_widget
    w.labels_layer.value = viewer.add_labels(_labels(), name="p")
    w.run()
    wait_done(w)
    monkeypatch.setattr("napari_nanogan.widgets.measure.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "sizes"), "CSV (*.csv)"))
    w._export_dialog()
    assert (tmp_path / "sizes.csv").is_file() and (tmp_path / "sizes_summary.csv").is_file()
    assert not (tmp_path / "sizes").exists()


def test_save_plot_writes_the_histogram_shown_as_a_figure(viewer_widget, wait_done, tmp_path, monkeypatch):
    from PIL import Image

    viewer, w = viewer_widget
    assert not w.plot_button.enabled  # nothing measured yet
    w.labels_layer.value = viewer.add_labels(_labels(), name="p", scale=(5.0, 5.0), metadata={"pixel_size_nm": 5.0})
    w.run()
    wait_done(w)
    assert w.plot_button.enabled
    monkeypatch.setattr("napari_nanogan.widgets.measure.QFileDialog.getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "sizes"), ""))
    w._plot_dialog()  # a bare name gets .png
    assert Image.open(tmp_path / "sizes.png").size[0] > 800
    w.measure.value = "feret_max"
    figure = w.save_plot(tmp_path / "feret.svg")
    assert "Feret diameter, max (nm)" in figure.read_text()
    assert w.figure.axes[0].get_xlabel() == "Feret diameter, max (nm)"  # the panel's plot names it alike


def test_a_small_pixel_size_is_used_exactly_not_as_the_field_rounds_it(viewer_widget, wait_done):
    viewer, w = viewer_widget
    layer = viewer.add_labels(_labels(), name="hrtem", scale=(0.01234, 0.01234), metadata={"pixel_size_nm": 0.01234})
    w.labels_layer.value = layer
    assert w.pixel_size.value == pytest.approx(0.012, abs=1e-9)  # what the field can show
    w.run()
    wait_done(w)
    assert layer.features["ecd_nm"][1] == pytest.approx(np.sqrt(4 * 400 / np.pi) * 0.01234)
    w.pixel_size.value = 0.5  # a value typed over it is used as typed
    w.run()
    wait_done(w)
    assert layer.features["ecd_nm"][1] == pytest.approx(np.sqrt(4 * 400 / np.pi) * 0.5)
    w.image_layer.value = viewer.add_image(np.zeros((100, 120), np.uint8), name="no pixel size")
    assert w.pixel_size.value == 0.5  # choosing an image without a pixel size keeps what was typed


def test_the_pickers_start_on_the_newest_labels_and_the_image_they_were_made_from(viewer_widget):
    viewer, w = viewer_widget
    assert w.labels_layer.value is None and w.image_layer.value is None
    sem = viewer.add_image(np.zeros((100, 120), np.uint8), name="sem", scale=(5.0, 5.0), units=("nm", "nm"))
    viewer.add_image(np.zeros((100, 120), np.uint8), name="same size")
    small = viewer.add_image(np.zeros((50, 60), np.uint8), name="small")
    assert w.image_layer.value is None  # no labels to measure yet: no image of theirs either
    particles = viewer.add_labels(_labels(), name="sem particles", metadata={"source_layer": "sem"})
    assert w.labels_layer.value is particles and w.image_layer.value is sem  # the image they were segmented from
    assert w.pixel_size.value == pytest.approx(5.0)  # and its pixel size
    plain = viewer.add_labels(np.zeros((50, 60), np.int32), name="plain")
    assert w.labels_layer.value is plain  # nothing chosen: the labels just added (a user measures what they made)
    assert w.image_layer.value is small  # labels of no named image: an image of their size
    w.labels_layer.value = particles  # chosen: kept, whatever is added
    viewer.add_labels(np.zeros((50, 60), np.int32), name="newer")
    assert w.labels_layer.value is particles
    w.labels_layer.value = plain
    w.image_layer.value = None  # "no image", chosen: kept
    viewer.add_image(np.zeros((50, 60), np.uint8), name="another small")
    assert w.image_layer.value is None
    # labels of no named image, with two images of their size: no guess (its pixel size would calibrate them)
    unnamed = viewer.add_labels(np.zeros((100, 120), np.int32), name="unnamed")
    fresh = MeasureWidget(viewer)
    assert fresh.labels_layer.value is unnamed and fresh.image_layer.value is None and fresh.pixel_size.value == 0
    viewer.layers.remove("same size")  # one image of their size left: that one
    assert MeasureWidget(viewer).image_layer.value is sem


def test_doubtful_particles_are_left_out_of_the_distribution_when_asked(viewer_widget, wait_done, tmp_path):
    """A confidence per particle (as Segment gives it): 'min confidence' leaves the doubtful ones out of the
    summary, the CSV and the plot, while the layer's features keep every particle."""
    viewer, w = viewer_widget
    labels = np.zeros((100, 120), np.int32)
    labels[10:20, 10:30], labels[40:60, 40:60], labels[70:90, 70:90] = 1, 2, 3
    layer = viewer.add_labels(labels, name="p", features={"index": [1, 2, 3], "confidence": [0.95, 0.2, 0.9]})
    w.labels_layer.value = layer
    w.run()
    wait_done(w)
    assert w.summary.value.startswith("n = 3 (0 cut, excluded)")
    w.min_confidence.value = 0.5
    assert w.summary.value.startswith("n = 2 (0 cut, excluded, 1 doubtful left out)")
    assert len(layer.features) == 3  # the layer still describes every particle
    w.export(tmp_path / "t.csv")
    assert [r["label"] for r in csv.DictReader(open(tmp_path / "t.csv"))] == ["1", "3"]
    w.labels_layer.value = viewer.add_labels(labels, name="annotation")  # no confidence: all kept, and said
    w.run()
    wait_done(w)
    assert w.summary.value.startswith("n = 3 (0 cut, excluded, no confidence per particle: all kept)")


def test_labels_that_name_their_image_take_it_over_an_image_chosen_before(viewer_widget):
    """An image chosen, then labels segmented from another open image arrive: the image picker goes to theirs,
    so intensities (and the pixel size) never come from the wrong image of the same size."""
    viewer, w = viewer_widget
    x = viewer.add_image(np.zeros((100, 120), np.uint8), name="x", scale=(2.0, 2.0), units=("nm", "nm"))
    y = viewer.add_image(np.zeros((100, 120), np.uint8), name="y", scale=(5.0, 5.0), units=("nm", "nm"))
    viewer.add_labels(_labels(), name="x particles", metadata={"source_layer": "x"})
    w.image_layer.value = y  # the user's choice (a wrong one for these labels)
    w.image_layer.value = x
    assert w.image_layer.value is x
    viewer.add_labels(_labels(), name="y particles", metadata={"source_layer": "y"})
    assert w.labels_layer.value.name == "y particles" and w.image_layer.value is y
    assert w.pixel_size.value == pytest.approx(5.0)


def test_results_of_an_earlier_layer_say_so_when_another_is_chosen(viewer_widget, wait_done):
    viewer, w = viewer_widget
    first = viewer.add_labels(_labels(), name="first")
    w.run()
    wait_done(w)
    assert w.summary.value.startswith("n = ")
    viewer.add_labels(_labels(), name="second")  # the picker moves to it: the table shown is still first's
    assert w.summary.value.startswith("of 'first' (press Measure for 'second'):")
    w.labels_layer.value = first
    assert w.summary.value.startswith("n = ")


def test_an_error_without_words_is_still_explained(viewer_widget, monkeypatch, wait_done):
    """A worker that dies of MemoryError (whose message is empty) said only "Measure particles: "."""
    viewer, w = viewer_widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets._run.show_error", errors.append)

    def out_of_memory(labels, **options):
        yield 0, 1
        raise MemoryError()

    monkeypatch.setattr("napari_nanogan.widgets.measure._measure_job", out_of_memory)
    w.labels_layer.value = viewer.add_labels(_labels(), name="p")
    w.run()
    wait_done(w)
    assert errors == ["Measure particles: not enough memory for this image on this machine"]
    assert w.summary.value == "failed"


@pytest.mark.parametrize("case", ["image of another size", "3D labels", "no labels layer"])
def test_a_refused_measure_says_so_instead_of_the_last_result(viewer_widget, wait_done, monkeypatch, case):
    viewer, w = viewer_widget
    errors = []
    monkeypatch.setattr("napari_nanogan.widgets.measure.show_error", errors.append)
    w.labels_layer.value = layer = viewer.add_labels(_labels(), name="p")
    w.run()
    wait_done(w)
    assert w.summary.value.startswith("n = ")
    if case == "image of another size":
        w.image_layer.value = viewer.add_image(np.zeros((50, 60), np.uint8), name="other")
        said = "image 'other' is 50 x 60 pixels, labels 100 x 120; choose the image they were made from."
    elif case == "3D labels":
        w.labels_layer.value = viewer.add_labels(np.zeros((2, 100, 120), np.int32), name="stack")
        said = "'stack' has 3 dimensions; measure a 2D label image."
    else:
        viewer.layers.remove(layer)
        said = "choose a Labels layer (segment an image first)."
    w.run()
    assert errors == [f"Measure particles: {said}"]
    assert w.summary.value == f"not started: {said}" and w.job.worker is None


def test_a_multiscale_labels_layer_is_measured_at_full_resolution(viewer_widget, wait_done):
    """napari's np.asarray of a multiscale layer is its coarsest level: Measure reads level 0, at the layer's
    pixel size (a 200-px disc at 2 nm/px is 400 nm across, not a quarter of it)."""
    viewer, w = viewer_widget
    yy, xx = np.mgrid[:512, :512]
    full = ((yy - 256) ** 2 + (xx - 256) ** 2 <= 100**2).astype(np.int32)
    levels = [full, full[::2, ::2], full[::4, ::4]]
    layer = viewer.add_labels(levels, multiscale=True, name="pyramid", scale=(2.0, 2.0), units=("nm", "nm"))
    w.labels_layer.value = layer
    w.image_layer.value = None
    w.run()
    wait_done(w)
    assert w.table.columns["ecd_nm"][0] == pytest.approx(400, rel=0.01)


def test_a_top_info_bar_flags_the_particles_it_cuts(viewer_widget, wait_done):
    viewer, w = viewer_widget
    labels = np.zeros((100, 120), np.int32)
    labels[20:30, 40:60] = 1  # reaches row 20, the first specimen row under a bar of rows 0-19
    labels[50:60, 40:60] = 2
    layer = viewer.add_labels(labels, name="particles", metadata={"info_bar_rows": (0, 20)})
    w.labels_layer.value = layer
    w.image_layer.value = None
    w.run()
    wait_done(w)
    assert list(w.table.columns["touches_info_bar"]) == [True, False]


def test_a_particle_painted_under_a_deleted_ones_number_gets_no_confidence(viewer_widget, wait_done):
    """The confidence belongs to the particle the segmentation scored: one erased and painted anew under its
    number (napari's next-label key gives it back) has none; untouched ones keep theirs."""
    viewer, w = viewer_widget
    labels = _labels()
    from napari_nanogan.io.masks import label_areas

    layer = viewer.add_labels(labels, name="particles", features={"index": [1, 2, 3], "confidence": [0.9, 0.8, 0.95]},
                              metadata={"label_areas": label_areas(labels, 3)})
    repainted = layer.data.copy()
    repainted[repainted == 3] = 0
    repainted[85:95, 90:100] = 3  # a new particle, drawn by hand under number 3
    layer.data = repainted
    w.labels_layer.value = layer
    w.image_layer.value = None
    w.run()
    wait_done(w)
    np.testing.assert_allclose(w.table.columns["confidence"], [0.9, 0.8, np.nan], rtol=1e-6)


def test_segmentation_labels_leave_room_for_particles_painted_by_hand():
    from napari_nanogan.widgets._layers import compact_labels

    assert compact_labels(np.arange(20, dtype=np.int64).reshape(4, 5)).dtype == np.uint16
    assert compact_labels(np.array([[0, 70000]])).dtype == np.uint32


def test_measure_widget_asks_whether_a_mask_is_inverted(viewer_widget, wait_done, monkeypatch):
    import napari_nanogan.widgets.measure as panel

    said = []
    monkeypatch.setattr(panel, "show_info", said.append)
    viewer, w = viewer_widget
    background = (_labels() == 0).astype(np.int32)  # particles drawn 0 on 1: the background is the one "particle"
    w.labels_layer.value = viewer.add_labels(background, name="inverted", metadata={"pixel_size_nm": 5.0})
    w.run()
    wait_done(w)
    assert any("is the mask inverted" in s and "'inverted'" in s for s in said)
    said.clear()
    w.labels_layer.value = viewer.add_labels(_labels(), name="right", metadata={"pixel_size_nm": 5.0})
    w.run()
    wait_done(w)
    assert not any("inverted" in s for s in said)
