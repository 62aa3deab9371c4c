"""bench.randomized_images segments domain-randomised images and reports F1 by kind and the diameter estimate's error."""

import numpy as np
from conftest import requires_shipped

from bench import randomized_images


def test_seed_ranges_and_draws_are_reproducible():
    assert list(randomized_images.seed_range("3-6")) == [3, 4, 5] and list(randomized_images.seed_range("7")) == [7]
    a, b = randomized_images.draw(14), randomized_images.draw(14)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == randomized_images.SHAPE and a[1].max() > 0


@requires_shipped
def test_a_clean_field_of_cubes_is_found_where_its_estimate_is_far_too_small(capsys, tmp_path):
    """Seed 0: 65 bright 27-px cubes on a clean SEM field, estimated at about 10 px. Enlarged twice, the network
    found none of them; the image's own scale finds most (its scale check, and the fallback without it)."""
    out = randomized_images.main(["--model", "default", "--seeds", "0", "--figure", str(tmp_path / "f.png")])
    assert capsys.readouterr().out.strip().startswith("{")
    (row,) = out["per_image"]
    assert row["family"] == "cubes" and row["estimate_px"] < 15 and row["scale"] == 1.0
    assert row["f1"] >= 0.3 and out["images"] == 1 and set(out["mean_f1_by"]) == {"style", "arrangement", "family"}
    assert (tmp_path / "f.png").stat().st_size > 10_000  # the overlay figure
