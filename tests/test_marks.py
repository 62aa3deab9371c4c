"""Marks burnt into a figure (scale bars, letters, label boxes) are not particles."""

import numpy as np

from napari_nanogan.segmentation.marks import drop_ink, ink_particles


def _field():
    """Grey particles on a darker background, a pure-white scale bar and a pure-black label box."""
    rng = np.random.default_rng(0)
    grey = rng.normal(80, 6, (120, 160)).clip(1, 254)
    labels = np.zeros(grey.shape, np.uint32)
    for k, (y, x) in enumerate([(20, 20), (20, 60), (60, 20), (60, 60), (90, 100)], 1):
        yy, xx = np.ogrid[:120, :160]
        disc = (yy - y) ** 2 + (xx - x) ** 2 < 81
        grey[disc] = rng.normal(170, 8, disc.sum()).clip(1, 254)
        labels[disc] = k
    grey[100:106, 10:60] = 255  # scale bar
    labels[98:108, 8:62] = 6  # segmented with a rim of background
    grey[5:20, 120:150] = 0  # label box
    labels[5:20, 120:150] = 7
    return grey.astype(np.uint8), labels


def test_particles_mostly_at_an_extreme_grey_level_are_marks():
    grey, labels = _field()
    assert ink_particles(grey, labels).tolist() == [False] * 5 + [True, True]
    kept, confidence = drop_ink(grey, labels, np.arange(7, dtype=np.float32) / 10)
    assert kept.max() == 5 and np.array_equal(kept > 0, (labels > 0) & (labels <= 5))
    assert confidence.tolist() == np.arange(5, dtype=np.float32).__truediv__(10).tolist()


def test_a_level_the_particles_reach_is_clipping_not_ink():
    grey, labels = _field()
    grey[labels > 0] = 255  # every particle saturated: the detector clips, nothing is a mark
    assert not ink_particles(grey, labels).any()


def test_a_particle_with_a_clipped_core_under_half_its_pixels_stays():
    grey, labels = _field()
    core = (labels == 1) & (np.add.outer((np.arange(120) - 20) ** 2, (np.arange(160) - 20) ** 2) < 25)
    grey[core] = 255  # about a third of the particle
    assert not ink_particles(grey, labels)[0]


def test_the_extreme_levels_are_the_specimen_rows_own():
    """An info bar darker than anything in the specimen does not hide a mark at the specimen's darkest level."""
    grey, labels = _field()
    grey[labels == 7] = 3  # the label box, darkest of the specimen
    grey[110:, :] = 0  # an info bar below it
    labels[110:, :] = 0
    assert ink_particles(grey, labels, rows=slice(0, 110))[6]
    assert not ink_particles(grey, labels)[6]


def test_without_particles_nothing_changes():
    grey, labels = _field()
    empty = np.zeros_like(labels)
    kept, confidence = drop_ink(grey, empty, np.zeros(0, np.float32))
    assert kept is empty and confidence.size == 0


def test_a_scale_bars_label_is_dropped_and_a_particle_beside_it_kept():
    """The letters of a scale bar's label, drawn as the bar is, are marks even where anti-aliasing or shrinking
    leaves most of their pixels off the extreme level (the ink rule's half); a particle there is kept."""
    from napari_nanogan.segmentation.marks import drop_scale_bar_marks, scale_bar_marks

    rng = np.random.default_rng(0)
    grey = rng.normal(110, 5, (300, 400)).clip(1, 254).astype(np.uint8)
    grey[0, 0] = 0
    grey[250:256, 200:300] = 255  # the bar, 100 px: its zone is rows 200-305 (half its length), columns 170-329
    labels = np.zeros(grey.shape, np.int32)

    def letter(k, rows, cols):  # a third of it white, the rest anti-aliased grey
        labels[rows, cols] = k
        grey[rows, cols] = 180
        grey[rows, cols.start : cols.start + (cols.stop - cols.start) // 3] = 255

    letter(1, slice(228, 240), slice(220, 232))  # above the bar
    labels[226:240, 250:264] = 2  # a grey particle in the same zone
    grey[226:240, 250:264] = 160
    letter(3, slice(100, 120), slice(100, 112))  # far from the bar
    letter(4, slice(190, 210), slice(270, 282))  # half of it above the zone
    letter(5, slice(250, 262), slice(314, 326))  # beside the bar's end, in the zone
    letter(6, slice(250, 262), slice(345, 357))  # further: out of it
    for k in range(7, 17):  # the image's particles, grey
        labels[10 + 16 * (k - 7) : 20 + 16 * (k - 7), 20:30] = k
        grey[10 + 16 * (k - 7) : 20 + 16 * (k - 7), 20:30] = 170
    letter(17, slice(205, 222), slice(230, 244))  # a tall label well above the bar (beyond 3 thicknesses, 24 px)
    expected = [True, False, False, False, True, False] + [False] * 10 + [True]
    assert list(scale_bar_marks(grey, labels)) == expected
    assert list(scale_bar_marks(np.stack([grey] * 3, -1), labels)) == expected  # colour: its grey levels
    kept, confidence = drop_scale_bar_marks(grey, labels, np.linspace(0.1, 0.9, 17))
    assert kept.max() == 14 and len(confidence) == 14 and (kept[labels == 2] == 1).all()
    assert not scale_bar_marks(grey, labels, rows=slice(0, 245)).any()  # a bar out of the specimen rows: none


def test_a_label_as_bright_as_the_particles_is_told_from_them_by_the_zone_alone():
    """Saturated bright particles and a white bar with white letters (two EMPS test figures): the letters beside
    the bar go, the particles elsewhere, as white as they are, stay."""
    from napari_nanogan.segmentation.marks import scale_bar_marks

    rng = np.random.default_rng(1)
    grey = rng.normal(40, 5, (300, 400)).clip(1, 254).astype(np.uint8)
    grey[0, 0] = 0
    grey[250:256, 200:300] = 255  # the bar
    labels = np.zeros(grey.shape, np.int32)
    for k, (y, x) in enumerate(((230, 215), (230, 245), (60, 60), (120, 200), (150, 320)), start=1):
        labels[y : y + 12, x : x + 10] = k
        grey[y : y + 12, x : x + 10] = 255  # particles (and letters) at white
    assert list(scale_bar_marks(grey, labels)) == [True, True, False, False, False]


def test_segmentation_drops_a_scale_bars_label_and_counts_what_the_finer_pass_kept(tiny_segmenter, sem_like,
                                                                                     monkeypatch):
    import napari_nanogan.segmentation.marks as marks
    from napari_nanogan.segmentation import segment

    seen = []
    real = marks.scale_bar_marks
    monkeypatch.setattr(marks, "scale_bar_marks", lambda *a, **k: seen.append(a) or real(*a, **k))
    image = sem_like[0].copy()
    result = segment(image, tiny_segmenter, tile=128)
    assert len(seen) == 1 and seen[0][2] == slice(0, result.info_bar.start)  # the specimen rows, once
    assert result.labels.max() == len(result.confidence) and result.small_added >= 0
