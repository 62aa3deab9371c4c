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
    finds none of them; the image's own scale is then taken, with or without the scale check."""
    out = randomized_images.main(["--model", "default", "--seeds", "0", "--figure", str(tmp_path / "f.png"),
                                  "--baseline"])
    assert capsys.readouterr().out.strip().startswith("{")
    (row,) = out["per_image"]
    assert row["family"] == "cubes" and row["estimate_px"] < 15 and row["scale"] == 1.0
    assert not row["scale_checked"]  # undone because the enlargement found nothing, not for its confidence
    assert row["f1"] >= 0.3 and out["images"] == 1 and set(out["mean_f1_by"]) == {"style", "arrangement", "family"}
    versus = out["by_style_vs_baseline"]  # one SEM image: its style's row and the pooled row agree
    assert set(versus) == {"sem", "pooled"} and versus["sem"]["f1"] == versus["pooled"]["f1"] == round(row["f1"], 4)
    assert versus["sem"]["baseline_f1"] == versus["pooled"]["baseline_f1"]
    assert abs(versus["sem"]["margin"] - (versus["sem"]["f1"] - versus["sem"]["baseline_f1"])) < 1e-4
    plain = randomized_images.main(["--model", "default", "--seeds", "0", "--no-scale-check"])["per_image"][0]
    assert plain["scale"] == 1.0 and plain["f1"] == row["f1"]  # the same without the scale check
    assert (tmp_path / "f.png").stat().st_size > 10_000  # the overlay figure
    trust = out["confidence"]  # each particle found, scored against the drawn ones
    assert trust["particles"] > 0 and 0 < trust["matched_share"] <= 1 and 0 <= trust["ece"] <= 1
    assert trust["particles_at_or_above_0.8"] <= trust["particles_at_or_above_0.5"] <= trust["particles"]


@requires_shipped
def test_bright_rods_the_network_misses_are_found_with_the_grey_levels_inverted():
    """Seed 42: 229 small bright rods on a HAADF ground. The network, which learned dark rods (bright-field TEM)
    from more images, finds few as they are, is unsure of them, and finds far more once the image is inverted."""
    from napari_nanogan.measure import median_diameter
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation import load_segmenter, segment

    image, labels, info = randomized_images.draw(42)
    assert info["family"] == "rods" and info["style"] == "haadf"
    model, diameter = load_segmenter("default"), median_diameter(labels)
    plain = segment(image, model, diameter=diameter, info_bar=None, polarity_check=False)
    checked = segment(image, model, diameter=diameter, info_bar=None)
    f1 = {name: summarize([(labels, r.labels)], min_area=9)["f1"] for name, r in (("plain", plain), ("checked", checked))}
    assert checked.inverted and not plain.inverted and "inverted" in checked.describe()
    assert f1["checked"] > f1["plain"] + 0.2, f1
