"""bench.failure_modes stages each failure on a procedural image and scores it against the labels it drew."""

import numpy as np
from conftest import requires_shipped

from bench import failure_modes


def test_false_particles_are_the_ones_on_background():
    truth = np.zeros((20, 20), np.int32)
    truth[2:8, 2:8] = 1
    pred = np.zeros_like(truth)
    pred[2:8, 2:8] = 1  # on the particle
    pred[12:18, 12:18] = 2  # on background
    pred[6:10, 6:10] = 3  # 4 of 16 pixels on the particle: mostly background
    assert failure_modes.false_particles(pred, truth) == 2


def test_the_stages_keep_their_labels_true():
    image, labels, kwargs = failure_modes.stage("marks")
    assert image.shape == labels.shape and labels.max() > 10 and kwargs["diameter"] == "auto"
    image, labels, _ = failure_modes.stage("grainy_matrix")
    background = image[labels == 0].astype(float)
    assert background.std() > 10  # the matrix is textured


@requires_shipped
def test_the_failure_panels_and_what_the_scale_rules_do_on_them(tmp_path, capsys):
    out = failure_modes.main(["--figure", str(tmp_path / "f.png")])
    assert capsys.readouterr().out.strip().startswith("{") and (tmp_path / "f.png").stat().st_size > 10_000
    panels = out["panels"]
    assert set(panels) == set(failure_modes.PANELS)
    # an estimate under 12 px enlarges the image as a typed diameter does, and finds most of them
    assert panels["small_estimated"]["diameter_px"] < 12 and panels["small_estimated"]["f1"] > 0.7
    assert abs(panels["small_estimated"]["f1"] - panels["small_typed"]["f1"]) < 0.1
    # the grainy matrix: its particles found, hardly a grain taken for one
    assert panels["grainy_matrix"]["f1"] > 0.85 and panels["grainy_matrix"]["false_particles"] <= 3
    assert all(0 <= p["f1"] <= 1 and p["false_particles"] <= p["segmented"] for p in panels.values())
    # satellites beside spheres: the estimate follows the spheres; the finer pass finds the satellites
    assert panels["satellites"]["diameter_px"] > 60 and panels["satellites"]["f1"] > 0.75


def test_satellites_sit_around_spheres_several_times_larger():
    from napari_nanogan.measure import equivalent_diameters

    _, labels, _ = failure_modes.stage("satellites")
    d = equivalent_diameters(labels, min_area=9)
    assert (d > 60).sum() >= 8 and (d < 30).sum() >= 1.5 * (d > 60).sum()
