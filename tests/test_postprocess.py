import dataclasses

import numpy as np

from napari_nanogan.config import PostprocessConfig
import pytest

from napari_nanogan.data.targets import capped_distance, contact_zone, interior_from_labels, targets_from_labels
from napari_nanogan.segmentation.postprocess import instances_from_probabilities


def _two_touching_discs():
    yy, xx = np.mgrid[0:60, 0:100]
    a = (yy - 30) ** 2 + (xx - 35) ** 2 <= 15**2
    b = (yy - 30) ** 2 + (xx - 62) ** 2 <= 15**2
    labels = np.zeros((60, 100), np.int32)
    labels[a] = 1
    labels[b & ~a] = 2
    return labels


def test_interior_seeds_separate_touching_particles():
    labels = _two_touching_discs()
    seeds = interior_from_labels(labels)
    assert seeds[labels == 1].any() and seeds[labels == 2].any()
    from scipy import ndimage as ndi

    assert ndi.label(seeds)[1] == 2  # one seed blob per particle
    t = targets_from_labels(labels)
    assert t.shape == (2, 60, 100) and t.dtype == np.float32


def random_labels(seed, shape=(61, 83)):
    """Overlapping discs of random sizes (some touching, some cut by the border) as instance labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k in range(1, rng.integers(1, 12)):
        cy, cx, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.uniform(1, 25)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
    return labels


@pytest.mark.parametrize("seed", range(12))
def test_capped_distance_is_scipys_transform_capped_to_the_bit(seed):
    from scipy import ndimage as ndi

    fg = random_labels(seed) > 0
    for cap in (1, 4, 8):
        np.testing.assert_array_equal(capped_distance(fg, cap), np.minimum(ndi.distance_transform_edt(fg), cap))
    full = np.ones((5, 7), bool)  # no background: scipy's own convention, capped
    np.testing.assert_array_equal(capped_distance(full, 4), np.minimum(ndi.distance_transform_edt(full), 4))


@pytest.mark.parametrize("seed", range(12))
def test_interior_equals_the_full_transforms_seeds(seed):
    """The capped transform inside ``interior_from_labels`` changes no seed (the reference is the full transform)."""
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    labels = random_labels(seed)
    for max_depth in (4.0, 2.5, 3.3):
        inside = (labels > 0) & ~find_boundaries(labels, connectivity=1, mode="inner")
        depth = ndi.distance_transform_edt(inside)
        deepest = np.asarray(ndi.maximum(depth, labels, index=np.arange(labels.max() + 1)))
        threshold = np.maximum(1.0, np.minimum(max_depth, 0.5 * deepest))
        reference = (labels > 0) & (depth >= threshold[labels]) & (depth > 0)
        np.testing.assert_array_equal(interior_from_labels(labels, max_depth=max_depth), reference)


def test_uncapped_seeds_are_each_particles_inner_core():
    from scipy import ndimage as ndi

    yy, xx = np.mgrid[0:120, 0:200]
    labels = np.zeros((120, 200), np.int32)  # two large overlapping particles, radius 40
    labels[(yy - 60) ** 2 + (xx - 60) ** 2 <= 40**2] = 1
    labels[((yy - 60) ** 2 + (xx - 130) ** 2 <= 40**2) & (labels == 0)] = 2
    capped = interior_from_labels(labels)  # 4 px in from every edge
    core = interior_from_labels(labels, max_depth=None)  # half the deepest distance in
    assert core.sum() < 0.5 * capped.sum()
    seeds, n = ndi.label(core)
    assert n == 2
    gap = ndi.distance_transform_edt(seeds != 1)[seeds == 2].min()
    assert gap > 3 * (ndi.distance_transform_edt(~(capped & (labels == 1)))[capped & (labels == 2)].min())
    t = targets_from_labels(labels, seed_depth=None)
    np.testing.assert_array_equal(t[1] > 0, core)


def test_contact_zone_marks_only_where_particles_meet():
    labels = _two_touching_discs()
    zone = contact_zone(labels, radius=3)
    assert zone.any()
    ys, xs = np.nonzero(zone)
    # the discs meet around x = 48.5: the zone hugs that line, both sides of it
    assert xs.min() >= 48 - 3 - 1 and xs.max() <= 49 + 3 + 1
    assert (labels[zone] == 1).any() and (labels[zone] == 2).any()
    assert not zone[:, :40].any() and not zone[:, 60:].any()  # far rims: isolated
    lone = np.zeros((30, 30), np.int32)
    lone[5:20, 5:20] = 1
    assert not contact_zone(lone).any()
    assert not contact_zone(np.zeros((8, 8), np.int32)).any()
    # a one-pixel gap still counts as contact: the segmenter must keep the line
    gap = np.zeros((20, 30), np.int32)
    gap[5:15, 3:14], gap[5:15, 15:27] = 1, 2
    assert contact_zone(gap)[:, 14].any()


def test_watershed_splits_touching_particles_and_drops_small():
    labels = _two_touching_discs()
    fg = (labels > 0).astype(np.float32)
    interior = interior_from_labels(labels).astype(np.float32)
    fg[2:4, 2:4] = 1  # a 4-px speck: removed by min_area
    out = instances_from_probabilities(fg, interior, PostprocessConfig(min_area=16))
    assert out.max() == 2
    for k in (1, 2):
        overlap = np.bincount(out[labels == k])
        assert overlap.argmax() > 0 and overlap.max() / (labels == k).sum() > 0.95
    assert out[2:4, 2:4].max() == 0


def test_uint8_probabilities_and_component_without_seed():
    fg = np.zeros((40, 40), np.uint8)
    fg[5:15, 5:15] = 255
    interior = np.zeros_like(fg)  # no seed at all: the component is still a particle
    out = instances_from_probabilities(fg, interior)
    assert out.max() == 1 and (out == 1).sum() == 100
    assert instances_from_probabilities(np.zeros_like(fg), interior).max() == 0


def test_peak_seeds_split_touching_particles():
    labels = _two_touching_discs()
    fg = (labels > 0).astype(np.float32)
    from scipy import ndimage as ndi

    depth = np.zeros_like(fg)
    for k in (1, 2):
        depth += ndi.distance_transform_edt(labels == k)
    interior = depth / depth.max()
    cfg = PostprocessConfig(seed_method="peaks", seed_threshold=0.3, min_distance=8, smooth_sigma=1.0)
    out = instances_from_probabilities(fg, interior, cfg)
    assert out.max() == 2
    import pytest

    with pytest.raises(ValueError, match="seed_method"):
        instances_from_probabilities(fg, interior, PostprocessConfig(seed_method="magic"))


def test_distance_and_combined_seeds_split_touching_discs_without_interior():
    labels = _two_touching_discs()
    fg = (labels > 0).astype(np.float32)
    for method in ("distance", "combined"):
        out = instances_from_probabilities(fg, np.zeros_like(fg), PostprocessConfig(seed_method=method, min_distance=8))
        assert out.max() == 2, method


def _blob(shape, centre, sigma):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))


def test_merge_depth_rejoins_a_particle_split_by_a_shallow_dip_but_not_touching_particles():
    from napari_nanogan.segmentation.postprocess import merge_shallow_regions

    # one elongated particle whose interior map has two maxima with a shallow dip between them
    yy, xx = np.mgrid[0:40, 0:80]
    fg = (((yy - 20) / 12.0) ** 2 + ((xx - 40) / 30.0) ** 2 <= 1).astype(np.float32)
    dip = np.clip(0.8 * (_blob(fg.shape, (20, 28), 6) + _blob(fg.shape, (20, 52), 6)) + 0.45 * _blob(fg.shape, (20, 40), 8), 0, 1)
    interior = dip * fg
    assert interior[20, 28] > 0.75 and interior[20, 40] < 0.7  # two seed blobs at 0.75, peaks 0.95 and a pass of 0.67
    split = PostprocessConfig(seed_threshold=0.75)
    assert instances_from_probabilities(fg, interior, split).max() == 2
    merged = instances_from_probabilities(fg, interior, PostprocessConfig(seed_threshold=0.75, merge_depth=0.4))
    assert merged.max() == 1 and (merged > 0).sum() == fg.sum()
    assert instances_from_probabilities(fg, interior, PostprocessConfig(seed_threshold=0.75, merge_depth=0.2)).max() == 2
    # two touching discs: the interior map falls to 0 between them, a pass far deeper than 0.3
    labels = _two_touching_discs()
    out = instances_from_probabilities((labels > 0).astype(np.float32), interior_from_labels(labels).astype(np.float32),
                                       PostprocessConfig(merge_depth=0.3))
    assert out.max() == 2
    # the depth is a threshold: a pass just under it merges, just over it does not
    regions = np.array([[1, 1, 2, 2]])
    relief = np.array([[0.9, 0.5, 0.6, 0.8]])  # peaks 0.9 and 0.8, pass min(0.5, 0.6) = 0.5: dynamic 0.3
    assert merge_shallow_regions(regions, relief, 0.31).max() == 1
    np.testing.assert_array_equal(merge_shallow_regions(regions, relief, 0.29), regions)
    np.testing.assert_array_equal(merge_shallow_regions(regions, relief, 0.0), regions)


def test_merge_depth_follows_passes_from_the_highest_down():
    from napari_nanogan.segmentation.postprocess import merge_shallow_regions

    # a chain 1 - 2 - 3: 2 is a shallow shoulder of 1 (dynamic 0.1); 3 sits behind a deep pass
    regions = np.array([[1, 1, 2, 2, 3, 3]])
    relief = np.array([[1.0, 0.8, 0.8, 0.9, 0.2, 0.9]])
    out = merge_shallow_regions(regions, relief, 0.2)
    assert out[0, 0] == out[0, 2] != out[0, 4]
    # relabelled in another order, the same partition
    out2 = merge_shallow_regions(np.array([[3, 3, 1, 1, 2, 2]]), relief, 0.2)
    assert (out2[0, 0] == out2[0, 2]) and out2[0, 2] != out2[0, 4]
    assert merge_shallow_regions(np.zeros((3, 3), np.int32), np.zeros((3, 3)), 0.5).max() == 0


def test_merge_interior_rejoins_a_rod_whose_depth_has_two_peaks_but_not_touching_particles():
    from napari_nanogan.segmentation.postprocess import merge_through

    # a dumbbell rod: thicker at its ends, so the combined relief (interior + depth) has a peak at each end;
    # the network's interior runs along it unbroken at 0.6-0.9
    yy, xx = np.mgrid[0:40, 0:120]
    half_width = 5 + 3 * ((xx - 60) / 45.0) ** 2
    fg = ((np.abs(yy - 20) <= half_width) & (xx >= 15) & (xx <= 105)).astype(np.float32)
    interior = ((np.abs(yy - 20) <= 2) & (xx >= 20) & (xx <= 100)) * (0.6 + 0.3 * np.abs(xx - 60) / 40.0)
    interior = interior.astype(np.float32)
    config = PostprocessConfig(seed_method="combined", seed_threshold=0.3, smooth_sigma=2.0, min_distance=4)
    assert instances_from_probabilities(fg, interior, config).max() == 2  # cut in the middle, as it was
    whole = instances_from_probabilities(fg, interior, dataclasses.replace(config, merge_interior=0.5))
    assert whole.max() == 1 and (whole > 0).sum() == fg.sum()
    assert instances_from_probabilities(fg, interior, dataclasses.replace(config, merge_interior=0.7)).max() == 2
    # touching discs: the interior falls to 0 at the contact, so they stay two
    labels = _two_touching_discs()
    out = instances_from_probabilities((labels > 0).astype(np.float32), interior_from_labels(labels).astype(np.float32),
                                       dataclasses.replace(config, merge_interior=0.5))
    assert out.max() == 2
    # the level is a threshold on the pass: min(0.5, 0.6) = 0.5 merges at 0.5, not at 0.51
    regions, relief = np.array([[1, 1, 2, 2]]), np.array([[0.9, 0.5, 0.6, 0.8]])
    assert merge_through(regions, relief, 0.5).max() == 1
    np.testing.assert_array_equal(merge_through(regions, relief, 0.51), regions)


def test_small_particles_are_dropped_and_the_rest_renumbered_band_by_band(monkeypatch):
    import napari_nanogan.segmentation.postprocess as post

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 40, size=(37, 23)).astype(np.uint32)  # label k covers about 21 pixels
    labels[labels == 7] = 0  # a gap in the numbering
    labels[0, :3] = 50  # a 3-pixel particle
    counts = np.bincount(labels.ravel())
    kept = [k for k in range(1, len(counts)) if counts[k] >= 16]
    expected = np.zeros_like(labels)
    for new, k in enumerate(kept, start=1):
        expected[labels == k] = new
    monkeypatch.setattr(post, "_CHUNK_PIXELS", 50)  # two rows per band
    out = post.drop_small_and_renumber(labels.copy(), 16)
    np.testing.assert_array_equal(out, expected)
    assert out.max() == len(kept) and 50 not in out
    # the whole post-processing gives the same labels in bands as in one pass
    disc = _two_touching_discs()
    fg = (disc > 0).astype(np.float32)
    interior = interior_from_labels(disc).astype(np.float32)
    banded = instances_from_probabilities(fg, interior, PostprocessConfig(min_area=16))
    monkeypatch.setattr(post, "_CHUNK_PIXELS", 1 << 22)
    np.testing.assert_array_equal(banded, instances_from_probabilities(fg, interior, PostprocessConfig(min_area=16)))
    assert banded.dtype == np.uint32 and banded.max() == 2
