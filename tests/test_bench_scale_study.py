"""bench.scale_study segments images as the product does, then once per scale and polarity, and judges a rule."""

import pytest
from conftest import requires_shipped

from bench import scale_study


@requires_shipped
def test_passes_around_the_scale_kept_and_the_rule_they_would_pass(capsys):
    """Seed 2: 70 dark rods of 16 px, estimated 72 px; the scale check keeps the image 1.5 times smaller. One
    pass at that scale gives the shipped labels again; one step larger finds more rods, surer, and scores better."""
    out = scale_study.main(["--images", "randomized:2", "--steps=0,1"])
    assert capsys.readouterr().out.strip().startswith("{")
    (row,) = out["per_image"]
    assert row["name"].startswith("2-tem-rods") and row["scale"] < 0.8 and not row["small_added"]
    same, larger = row["passes"]["+0"], row["passes"]["+1"]
    assert same["scale"] == pytest.approx(row["scale"], abs=1e-4)
    assert (same["f1"], same["count"]) == (row["shipped"]["f1"], row["shipped"]["count"])
    assert larger["scale"] == pytest.approx(row["scale"] * 2**0.5, rel=1e-3)
    assert larger["count"] > 1.2 * same["count"] and larger["confidence"] > same["confidence"] + 0.04
    assert larger["f1"] > same["f1"] + 0.1
    assert out["passes"]["+1"]["switched"] == 1 and out["passes"]["+1"]["f1_gained_in_sum"] > 0.1
    assert out["mean_f1_best_pass"] == larger["f1"]
    around = scale_study.main(["--images", "randomized:2", "--steps=0", "--around", "annotated"])["per_image"][0]
    assert around["passes"]["+0"]["scale"] == pytest.approx(24 / around["diameter_px"], rel=1e-3)  # own scale 1.46x


@requires_shipped
def test_passes_see_the_grey_levels_the_shipped_labels_came_from():
    """Seed 42: 229 small bright rods, kept inverted by the polarity check. The pass at the scale kept repeats
    the shipped labels; the other polarity (the image as it is) finds far fewer; the images the polarity check
    leaves at another scale than their own are not studied with --own-scale-only."""
    out = scale_study.main(["--images", "randomized:42", "--steps=0", "--invert"])
    (row,) = out["per_image"]
    assert row["inverted"] and row["scale"] == 2.0
    assert row["passes"]["+0"]["count"] == row["shipped"]["count"] > 100
    other = row["passes"]["inverted"]
    assert other["count"] < 0.5 * row["shipped"]["count"] and other["f1"] < row["shipped"]["f1"] - 0.2
    assert out["passes"]["inverted"]["switched"] == 0
    assert scale_study.main(["--images", "randomized:42", "--steps=0", "--own-scale-only"])["count"] == 0


def test_unknown_image_sets_are_refused():
    with pytest.raises(SystemExit, match="unknown --images"):
        list(scale_study.images("emps:holdout", scale_study.DATA_ROOT))
