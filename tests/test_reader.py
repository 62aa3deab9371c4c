"""The napari reader: images with their pixel size and info bar, label images as Labels, PNG, the sample."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_nanogan._napari import READER_PATTERNS, get_reader, prefer_this_reader, sample_sem


def _layer_types(layers):
    return [t for _, _, t in layers]


def test_a_tiff_opens_at_its_pixel_size_with_its_info_bar(sem_like, tmp_path):
    image, _ = sem_like
    path = tmp_path / "field.tif"
    tifffile.imwrite(path, image, resolution=(1e7 / 7.344, 1e7 / 7.344), resolutionunit="CENTIMETER")
    layers = get_reader(str(path))(str(path))
    assert _layer_types(layers) == ["image", "shapes"]
    data, kwargs, _ = layers[0]
    assert kwargs["scale"] == pytest.approx((7.344, 7.344)) and kwargs["units"] == ("nm", "nm")
    assert kwargs["metadata"]["info_bar_rows"][1] == image.shape[0]


def test_a_png_opens(tmp_path, sem_like):
    image, _ = sem_like
    Image.fromarray(image).save(tmp_path / "figure.png")
    layers = get_reader(str(tmp_path / "figure.png"))(str(tmp_path / "figure.png"))
    assert layers[0][2] == "image" and layers[0][0].shape == image.shape
    assert get_reader(str(tmp_path / "notes.txt")) is None


def test_a_label_image_of_nanogan_segment_opens_as_labels_with_its_confidence(tmp_path):
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 5:15], labels[20:30, 20:40] = 1, 2
    path = write_labels(tmp_path / "field_labels.tif", labels, pixel_size_nm=7.344, confidence=np.array([0.9, 0.4]))
    (data, kwargs, kind), = get_reader(str(path))(str(path))
    assert kind == "labels" and np.array_equal(data, labels)
    assert kwargs["scale"] == pytest.approx((7.344, 7.344))
    assert list(kwargs["features"]["index"]) == [1, 2]
    np.testing.assert_allclose(kwargs["features"]["confidence"], [0.9, 0.4])
    assert kwargs["metadata"]["source_layer"] == "field"  # the panels pair it with the layer of field.tif
    # an ordinary image whose name does not say labels stays an image
    tifffile.imwrite(tmp_path / "field.tif", labels)
    assert get_reader(str(tmp_path / "field.tif"))(str(tmp_path / "field.tif"))[0][2] == "image"


def test_the_sample_has_its_info_bar_outlined():
    layers = sample_sem()
    assert _layer_types(layers) == ["image", "labels", "shapes"]
    assert layers[2][1]["name"] == "procedural SEM info bar"


def test_this_reader_becomes_napari_s_choice_where_the_user_made_none(monkeypatch):
    from napari import settings
    from napari.settings import NapariSettings

    fresh = NapariSettings(config_path=None)  # in memory: the user's settings file is never touched
    fresh.plugins.extension2reader = {"*.png": "someone-else"}
    monkeypatch.setattr(settings, "_SETTINGS", fresh)
    added = prefer_this_reader()
    assert "*.tif" in added and "*.png" not in added
    choice = fresh.plugins.extension2reader
    assert choice["*.png"] == "someone-else" and all(choice[p] == "napari-nanogan" for p in added)
    assert set(added) == set(READER_PATTERNS) - {"*.png"}
    assert prefer_this_reader() == []  # a second time: nothing left to choose


def test_annotated_masks_open_as_labels_and_pictures_in_a_masks_folder_as_images(tmp_path):
    """A BAM-style binary mask (masks/<stem>_m.tif, 0/255) opened as a grey Image at 1 px scale:
    specks in a corner of its image, to be converted by hand before fine-tuning."""
    from napari_nanogan.data.procedural import particle_labels, sample_image
    from napari_nanogan._napari import read_em_image

    labels = particle_labels((120, 160), n_particles=20, mean_diameter=14, seed=4)
    folder = tmp_path / "masks"
    folder.mkdir()
    tifffile.imwrite(folder / "field_m.tif", ((labels > 0) * 255).astype(np.uint8))
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "field_mask.png")
    picture = sample_image()[0][:120, :160]
    tifffile.imwrite(folder / "field.tif", picture)  # a micrograph that sits among masks
    [(binary, _, kind)] = read_em_image(folder / "field_m.tif")
    assert kind == "labels" and binary.max() > 1  # 4-connected particles, not one label 255
    [(instances, _, kind)] = read_em_image(tmp_path / "field_mask.png")
    assert kind == "labels"
    np.testing.assert_array_equal(instances, labels)
    assert read_em_image(folder / "field.tif")[0][2] == "image"
    tifffile.imwrite(tmp_path / "field.tif", ((labels > 0) * 255).astype(np.uint8))  # no mask name, no mask folder
    assert read_em_image(tmp_path / "field.tif")[0][2] == "image"


def test_a_mask_named_as_its_image_in_a_masks_folder_is_called_a_mask_and_tied_to_its_image(tmp_path):
    """EMPS's layout: images/a.png and masks/a.png. The mask's layer is not a second "a" (napari would call it
    "a [1]"), and the panels pair it with the image "a"."""
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan._napari import read_em_image

    labels = particle_labels((120, 160), n_particles=20, mean_diameter=14, seed=4)
    (tmp_path / "masks").mkdir()
    Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(tmp_path / "masks" / "a.png")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "masks" / "b_mask.png")
    [(_, kwargs, kind)] = read_em_image(tmp_path / "masks" / "a.png")
    assert kind == "labels" and kwargs["name"] == "a mask" and kwargs["metadata"]["source_layer"] == "a"
    [(_, kwargs, _)] = read_em_image(tmp_path / "masks" / "b_mask.png")
    assert kwargs["name"] == "b_mask" and kwargs["metadata"]["source_layer"] == "b"


def test_a_mask_without_a_pixel_size_takes_its_images(tmp_path):
    """images/<stem>.tif and masks/<stem>_m.tif (the BAM layout; nanogan export's is images/ and masks/):
    the mask's layer gets its image's scale, so the two overlay in napari."""
    from napari_nanogan._napari import read_em_image
    from napari_nanogan.data.procedural import particle_labels

    labels = particle_labels((64, 80), n_particles=6, mean_diameter=12, seed=5)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "f1.tif", np.zeros((64, 80), np.uint8),
                     resolution=(1e7 / 7.344, 1e7 / 7.344), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "masks" / "f1_m.tif", ((labels > 0) * 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "masks" / "f2_m.tif", ((labels > 0) * 255).astype(np.uint8))  # no image of its own
    [(_, kwargs, kind)] = read_em_image(tmp_path / "masks" / "f1_m.tif")
    assert kind == "labels" and kwargs["scale"] == pytest.approx((7.344, 7.344)) and kwargs["units"] == ("nm", "nm")
    assert "of its image f1.tif" in kwargs["metadata"]["pixel_size_source"]
    assert kwargs["metadata"]["source_layer"] == "f1"  # two fields of one size: each mask is paired with its own
    [(_, kwargs, _)] = read_em_image(tmp_path / "masks" / "f2_m.tif")
    assert "scale" not in kwargs


def test_a_mask_takes_the_pixel_size_of_its_own_image_not_a_glob_match(tmp_path):
    from napari_nanogan._napari import read_em_image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name, nm in (("s1.tif", 2.0), ("s[12].tif", 9.0)):
        tifffile.imwrite(tmp_path / "images" / name, np.zeros((32, 40), np.uint8),
                         resolution=(1e7 / nm, 1e7 / nm), resolutionunit="CENTIMETER")
    mask = np.zeros((32, 40), np.uint8)
    mask[5:15, 5:15] = 255
    tifffile.imwrite(tmp_path / "masks" / "s[12]_m.tif", mask)
    [(_, kwargs, _)] = read_em_image(tmp_path / "masks" / "s[12]_m.tif")
    assert kwargs["scale"] == pytest.approx((9.0, 9.0))


def test_a_label_image_opens_with_the_info_bar_it_records(tmp_path):
    """So that Measure flags the particles the bar cuts on a reopened labels file without its image."""
    from napari_nanogan.io.images import write_labels

    labels = np.zeros((60, 50), np.uint16)
    labels[5:15, 5:15] = 1
    for name, rows, bar in (("bottom_labels.tif", {"info_bar_start": 50}, (50, 60)),
                            ("top_labels.tif", {"info_bar_end": 12}, (0, 12)), ("none_labels.tif", {}, None)):
        path = write_labels(tmp_path / name, labels, **rows)
        (_, kwargs, kind), = get_reader(str(path))(str(path))
        assert kind == "labels" and kwargs["metadata"].get("info_bar_rows") == bar


def test_a_palette_mask_opens_as_labels_whatever_its_colours(tmp_path):
    """A colour palette is applied to images only: a mask's palette indices are its labels."""
    from PIL import Image

    labels = np.zeros((40, 40), np.uint8)
    labels[:30, :20], labels[:30, 20:], labels[30:, :] = 1, 2, 3  # dense: no background to speak of
    labels[35:, 35:] = 0
    mask = Image.fromarray(labels, "P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    mask.save(tmp_path / "field_mask.png")
    (data, _, kind), = get_reader(str(tmp_path / "field_mask.png"))(str(tmp_path / "field_mask.png"))
    assert kind == "labels" and set(np.unique(data)) == {0, 1, 2, 3}


def _labels_layer(**kwargs):
    from napari.layers import Labels

    labels = np.zeros((64, 80), np.uint16)
    labels[5:15, 5:15], labels[30:40, 30:50], labels[20:26, 60:70] = 1, 2, 3
    return Labels(labels, name="field particles", **kwargs)


def test_a_labels_layer_saved_with_the_writer_opens_again_as_it_was(tmp_path):
    """napari's Save Layer with this plugin's writer: the label TIFF of `nanogan segment` (pixel size, info
    bar, confidence table), opened again as Labels whatever the name given."""
    from npe2 import PluginManager, write

    PluginManager.instance().discover()
    layer = _labels_layer(scale=(2.5, 2.5), units=("nm", "nm"), metadata={"info_bar_rows": (56, 64)},
                          features={"index": [1, 2, 3], "confidence": [0.9, 0.4, 0.7]})
    written = write(tmp_path / "corrected.tif", [layer], plugin_name="napari-nanogan")
    assert written == [str(tmp_path / "corrected.tif"), str(tmp_path / "corrected.csv")]
    data, kwargs, kind = get_reader(written[0])(written[0])[0]
    assert kind == "labels" and np.array_equal(data, layer.data)
    assert kwargs["scale"] == (2.5, 2.5) and kwargs["metadata"]["info_bar_rows"] == (56, 64)
    assert np.allclose(kwargs["features"]["confidence"], [0.9, 0.4, 0.7])


def test_the_writer_drops_the_confidence_of_repainted_particles_and_refuses_what_is_not_2d(tmp_path):
    from napari_nanogan._napari import write_labels_layer
    from napari_nanogan.io.images import labels_pixel_size_nm, read_label_table
    from napari_nanogan.io.masks import label_areas

    layer = _labels_layer(scale=(0.004, 0.004), units=("µm", "µm"),
                          features={"index": [1, 2, 3], "confidence": [0.9, 0.4, 0.7]})
    layer.metadata["label_areas"] = label_areas(layer.data, 3)
    layer.data[40:44, 5:9] = 2  # particle 2 extended by hand: no longer the one scored
    data, meta, _ = layer.as_layer_data_tuple()
    path = write_labels_layer(str(tmp_path / "edited.tif"), data, meta)[0]
    assert labels_pixel_size_nm(path) == pytest.approx(4.0)
    table = read_label_table(path, 3)
    assert table[0] == pytest.approx(0.9) and np.isnan(table[1]) and table[2] == pytest.approx(0.7)
    plain = _labels_layer()  # painted by hand: no pixel size, no table
    data, meta, _ = plain.as_layer_data_tuple()
    assert write_labels_layer(str(tmp_path / "painted.tif"), data, meta) == [str(tmp_path / "painted.tif")]
    assert labels_pixel_size_nm(tmp_path / "painted.tif") is None and read_label_table(tmp_path / "painted.tif", 3) is None
    with pytest.raises(ValueError, match="3D.*Split Stack"):
        write_labels_layer(str(tmp_path / "stack.tif"), np.zeros((2, 8, 8), np.uint8), {"name": "stack"})
    assert not (tmp_path / "stack.tif").exists()


def test_a_mask_opened_alone_takes_the_info_bar_of_its_image(tmp_path, sem_like):
    """As `nanogan measure` reads it: Measure flags the particles the image's bar cuts (it flagged none)."""
    from napari_nanogan._napari import read_em_image

    image, labels = sem_like  # a 24-row data bar below the labels' rows
    mask = np.zeros(image.shape, np.uint8)
    mask[: labels.shape[0]] = (labels > 0) * 255
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "f.tif", image)
    tifffile.imwrite(tmp_path / "masks" / "f_m.tif", mask)
    [(_, kwargs, kind)] = read_em_image(tmp_path / "masks" / "f_m.tif")
    assert kind == "labels" and kwargs["metadata"]["info_bar_rows"] == (labels.shape[0], image.shape[0])
    tifffile.imwrite(tmp_path / "images" / "f.tif", image[:100])  # another shape: not its image
    [(_, kwargs, _)] = read_em_image(tmp_path / "masks" / "f_m.tif")
    assert "info_bar_rows" not in kwargs["metadata"]
