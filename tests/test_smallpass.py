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

    assert out.max() == 4 and len(conf) == 4
    assert (out[labels > 0] == labels[labels > 0]).all()  # the first pass's particles are kept as they were
    assert (out == 4).sum() == cases[1][0].sum() and conf[3] == pytest.approx(0.95)
    assert (out_fg[out == 4] == 200).all()
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
