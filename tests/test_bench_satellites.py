"""bench.satellites draws spheres with satellites over many seeds and counts the satellites found."""

import numpy as np
import pytest
from conftest import requires_shipped

from bench import satellites


def test_found_at_matches_each_annotated_particle_at_iou_one_half():
    truth = np.zeros((20, 20), np.int32)
    truth[0:4, 0:4] = 1
    truth[10:14, 10:14] = 2
    truth[0:4, 10:14] = 3
    pred = np.zeros_like(truth)
    pred[0:4, 0:4] = 5  # the same pixels
    pred[10:14, 10:12] = 1  # half of particle 2: IoU 0.5
    pred[0:2, 10:12] = 2  # a quarter of particle 3
    assert satellites.found_at(truth, pred).tolist() == [True, True, False]
    assert satellites.found_at(truth, np.zeros_like(truth)).tolist() == [False, False, False]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_seed_draws_spheres_of_its_size_with_satellites_a_tenth_to_a_quarter_of_it(seed):
    image, labels, is_satellite = satellites.draw(seed)
    assert image.shape == labels.shape == satellites.SHAPE and image.dtype == np.uint8
    diameter = np.sqrt(4 * np.bincount(labels.ravel())[1:] / np.pi)
    big = satellites.SPHERES_PX[seed % 3]
    assert is_satellite.sum() >= 10 and (~is_satellite).sum() >= 3
    assert np.median(diameter[~is_satellite]) == pytest.approx(big, rel=0.3)
    assert diameter[is_satellite].max() < 0.45 * big
    assert image[labels > 0].mean() > image[labels == 0].mean() + 40  # bright particles, as SEM draws them
    assert (satellites.draw(seed)[1] == labels).all()  # one seed, one image


def test_seed_ranges_and_lists():
    assert satellites.seeds_arg("3-6") == [3, 4, 5] and satellites.seeds_arg("1,7") == [1, 7]


@requires_shipped
def test_the_shipped_segmenter_finds_most_satellites_and_every_sphere(capsys):
    out = satellites.main(["--seeds", "0-3"])
    assert capsys.readouterr().out.strip().startswith("{")
    assert out["sphere_recall"] == 1.0 and out["satellite_recall"] > 0.6 and out["precision"] > 0.9
    assert sum(r["satellites"] for r in out["per_image"]) == out["satellites"] and len(out["per_image"]) == 3
