import numpy as np

from napari_nanogan.config import PostprocessConfig
from napari_nanogan.data.targets import contact_zone, interior_from_labels, targets_from_labels
from napari_nanogan.postprocess import instances_from_probabilities


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
