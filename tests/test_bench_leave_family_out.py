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
