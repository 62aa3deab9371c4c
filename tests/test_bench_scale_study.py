"""bench.scale_study segments images as the product does, then once per scale and polarity, and judges a rule."""

import pytest
from conftest import requires_shipped

from bench import scale_study


@requires_shipped
def test_passes_around_the_scale_kept_and_the_rule_they_would_pass(capsys):
    """Seed 2: 70 dark rods of 16 px, estimated 72 px; the scale check keeps the image 1.5 times smaller. One
    pass at that scale gives the shipped labels again; one step larger finds more rods, surer, and scores better."""
    out = scale_study.main(["--images", "randomized:2", "--steps=0,1", "--invert"])
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
    assert out["passes"]["+0"]["switched"] == 0 and "inverted" in out["passes"]
    assert out["mean_f1_best_pass"] >= out["mean_f1_shipped"]


def test_unknown_image_sets_are_refused():
    with pytest.raises(SystemExit, match="unknown --images"):
        list(scale_study.images("emps:holdout", scale_study.DATA_ROOT))
