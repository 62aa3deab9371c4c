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
    from napari_nanogan.io.infobar import InfoBar
    from napari_nanogan.segmentation.marks import drop_scale_bar_marks, scale_bar_marks

    rng = np.random.default_rng(0)
    grey = rng.normal(110, 5, (300, 400)).clip(1, 254).astype(np.uint8)
    grey[0, 0] = 0
    grey[250:256, 200:300] = 255  # the bar, 100 px
    labels = np.zeros(grey.shape, np.int32)
    labels[228:240, 220:232] = 1  # a letter of its label: a third of it white, the rest anti-aliased grey
    grey[228:240, 220:224] = 255
    grey[228:240, 224:232] = 180
    labels[226:240, 250:264] = 2  # a grey particle in the same zone
    grey[226:240, 250:264] = 160
    labels[100:120, 100:120] = 3  # a particle far from the bar, white in part
    grey[100:120, 100:110] = 255
    assert list(scale_bar_marks(grey, labels)) == [True, False, False]
    kept, confidence = drop_scale_bar_marks(grey, labels, np.array([0.5, 0.9, 0.8]))
    assert kept.max() == 2 and list(confidence) == [0.9, 0.8] and (kept[labels == 2] == 1).all()
    assert not scale_bar_marks(grey, labels, InfoBar(245, 300, "bottom")).any()  # a data bar's rows hold none
