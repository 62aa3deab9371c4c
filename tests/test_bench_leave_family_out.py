import numpy as np

from napari_nanogan.data.datasets import Sample


def test_inverted_images_change_the_family_and_keep_the_labels():
    from bench.leave_family_out import family_of, inverted

    labels = np.zeros((64, 64), np.int32)
    labels[10:30, 10:30], labels[35:55, 35:55] = 1, 2
    image = np.where(labels > 0, 200, 40).astype(np.uint8)
    bright = Sample("s", image, labels, 40.0, 200.0)
    dark = inverted(bright)
    assert family_of(bright) == "bright" and family_of(dark) == "dark"
    assert dark.labels is labels and dark.image.min() == 40 and dark.image.max() == 200
    assert np.array_equal(dark.image[labels > 0], np.full((labels > 0).sum(), 40.0))


def test_score_at_the_annotated_diameter_passes_each_images_own(monkeypatch):
    import bench.leave_family_out as lofo
    from napari_nanogan.measure import median_diameter
    from napari_nanogan.segmentation.pipeline import SegmentationResult

    seen = []

    def fake_segment(image, model, *, diameter, info_bar, scale_check=True, polarity_check=True):
        seen.append(diameter)
        labels = model if isinstance(model, np.ndarray) else np.zeros(image.shape, np.int32)
        return SegmentationResult(labels=labels, foreground=labels, interior=labels, info_bar=None)

    monkeypatch.setattr(lofo, "segment", fake_segment)
    small, large = np.zeros((64, 64), np.int32), np.zeros((64, 64), np.int32)
    small[5:9, 5:9], small[20:24, 20:24] = 1, 2
    large[5:35, 5:35] = 1
    samples = [Sample("a", (small > 0).astype(np.uint8) * 200, small, 0.0, 200.0),
               Sample("b", (large > 0).astype(np.uint8) * 200, large, 0.0, 200.0)]
    lofo.score(None, samples, "truth")
    assert seen == [median_diameter(small), median_diameter(large)] and seen[0] < 5 < 30 < seen[1]
    seen.clear()
    lofo.score(None, samples)
    assert seen == ["auto", "auto"]
