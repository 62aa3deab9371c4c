"""The finer pass over shrunk images: small particles beside large ones are added, marks and pieces are not."""

import numpy as np
import pytest

from napari_nanogan.segmentation.smallpass import add_small_particles, small_pass_factor


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_the_finer_pass_runs_only_for_images_made_at_least_twice_smaller():
    assert small_pass_factor(1.0) is None and small_pass_factor(0.6) is None
    assert small_pass_factor(0.5) == 1.0
    assert small_pass_factor(0.125) == pytest.approx(0.5)


def test_only_compact_confident_small_particles_on_the_background_with_the_particles_contrast_are_added():
    shape = (300, 400)
    grey = np.full(shape, 40.0, np.float32)
    labels = np.zeros(shape, np.uint32)
    for k, (cy, cx) in enumerate([(80, 80), (80, 300), (220, 300)], start=1):  # three large particles, 120 px
        labels[disc(shape, cy, cx, 60)] = k
        grey[disc(shape, cy, cx, 60)] = 180
    fine = np.zeros(shape, np.uint32)
    cases = {  # fine-pass label: (mask, grey level, confidence, added?)
        1: (disc(shape, 230, 80, 8), 170, 0.95, True),  # a satellite on the background
        2: (disc(shape, 80, 140, 8), 170, 0.95, False),  # mostly on a large particle
        3: (np.zeros(shape, bool), 180, 0.95, False),  # a thin stroke (a letter's)
        4: (disc(shape, 200, 180, 8), 10, 0.95, False),  # darker than the background: not like the particles
        5: (disc(shape, 260, 150, 8), 255, 0.95, False),  # saturated: a burnt-in mark
        6: (disc(shape, 160, 190, 8), 170, 0.5, False),  # the finer pass is unsure of it
        7: (disc(shape, 260, 40, 35), 170, 0.95, False),  # as large as half the particles: a piece of one missed
        8: (disc(shape, 220, 237, 8), 170, 0.95, True),  # a quarter of it under a large particle's outline
        9: (disc(shape, 30, 190, 8), 170, 0.75, True),  # on the background, fairly sure
        10: (disc(shape, 30, 240, 8), 170, 0.65, False),  # less sure than that
        11: (disc(shape, 80, 239, 8), 170, 0.95, False),  # 39 % under a large particle's outline
    }
    cases[3][0][150:153, 150:180] = True
    for k, (mask, level, _, _) in cases.items():
        fine[mask & (fine == 0)] = k
        grey[mask & (labels == 0)] = level
    grey[disc(shape, 80, 140, 8) & (labels > 0)] = 180
    confidence = np.full(3, 0.9, np.float32)
    fine_confidence = np.array([cases[k][2] for k in sorted(cases)], np.float32)
    fg = (labels > 0).astype(np.uint8) * 255
    fine_fg = (fine > 0).astype(np.uint8) * 200

    out, conf, out_fg, _ = add_small_particles(grey, labels, confidence, fg, fg.copy(), fine, fine_confidence,
                                               fine_fg, fine_fg.copy())

    assert out.max() == 6 and len(conf) == 6
    assert (out[labels > 0] == labels[labels > 0]).all()  # the first pass's particles are kept as they were
    assert (out == 4).sum() == cases[1][0].sum() and conf[3] == pytest.approx(0.95)
    assert (out_fg[out == 4] == 200).all()
    assert (out == 5).sum() == (cases[8][0] & (labels == 0)).sum() and conf[5] == pytest.approx(0.75)
    for k, (mask, _, _, added) in cases.items():
        assert bool((out[mask & (labels == 0)] > 3).any()) == added, k


def test_nothing_found_by_the_first_pass_or_the_finer_one_leaves_the_labels_as_they_are():
    shape = (64, 64)
    grey = np.random.default_rng(0).normal(100, 5, shape).astype(np.float32)
    empty = np.zeros(shape, np.uint32)
    zeros = np.zeros(shape, np.uint8)
    fine = disc(shape, 30, 30, 5).astype(np.uint32)
    out, conf, _, _ = add_small_particles(grey, empty, np.zeros(0, np.float32), zeros, zeros, fine,
                                          np.ones(1, np.float32), zeros, zeros)
    assert out.max() == 0 and conf.size == 0
    labels = disc(shape, 20, 20, 10).astype(np.uint32)
    out, _, _, _ = add_small_particles(grey, labels, np.ones(1, np.float32), zeros, zeros, empty,
                                       np.zeros(0, np.float32), zeros, zeros)
    assert (out == labels).all()


def _one_large_particle(shape=(200, 300), level=180.0):
    grey = np.full(shape, 40.0, np.float32)
    labels = disc(shape, 100, 100, 60).astype(np.uint32)
    grey[labels > 0] = level
    return grey, labels


def _add(grey, labels, fine, fine_confidence=None):
    fine_confidence = np.full(int(fine.max()), 0.95, np.float32) if fine_confidence is None else fine_confidence
    zeros = np.zeros(grey.shape, np.uint8)
    return add_small_particles(grey, labels, np.ones(int(labels.max()), np.float32), zeros, zeros, fine,
                               fine_confidence, zeros, zeros)[0]


def test_a_small_particle_with_no_free_ring_is_judged_against_the_background():
    """A satellite in a pocket of the large particle: no free pixel around it, so its contrast is to the background."""
    grey, labels = _one_large_particle()
    from scipy import ndimage as ndi

    pocket = disc(grey.shape, 100, 100, 8)
    labels[ndi.binary_dilation(pocket)] = 0  # a pocket with a 1-px gap: no pixel of a ring 2-5 px around it is free
    grey[pocket] = 170
    out = _add(grey, labels, pocket.astype(np.uint32))
    assert out.max() == 2 and (out == 2).sum() == pocket.sum()


def test_clipped_grey_levels_that_the_particles_reach_are_no_marks():
    """8-bit SEM clips bright particles at 255: satellites at 255 are kept when the large particles are clipped too,
    and dropped as burnt-in ink when nothing else is."""
    satellite = disc((200, 300), 100, 240, 8)
    for large_level, added in ((255.0, True), (180.0, False)):
        grey, labels = _one_large_particle(level=large_level)
        grey[satellite] = 255
        assert (_add(grey, labels, satellite.astype(np.uint32)).max() == 2) == added, large_level


def test_a_small_particle_cut_in_two_by_a_large_one_is_added_as_its_larger_piece():
    grey, labels = _one_large_particle()
    satellite = disc(grey.shape, 100, 240, 9)
    grey[satellite] = 170
    labels[99:101, 225:256] = 2  # a thin first-pass particle across it (under a fifth of its area)
    grey[labels == 2] = 180
    assert (satellite & (labels > 0)).sum() <= 0.2 * satellite.sum()
    out = _add(grey, labels, satellite.astype(np.uint32))
    added = out == 3
    from scipy import ndimage as ndi

    assert out.max() == 3 and ndi.label(added)[1] == 1  # one piece, not two
    assert added.sum() > 0.4 * satellite.sum() and (added & ~satellite).sum() == 0
