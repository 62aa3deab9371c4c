import numpy as np


def test_inverted_mirrors_grey_levels_within_the_images_range_and_keeps_its_dtype():
    from bench.evaluate import inverted

    image = np.array([[3, 200], [50, 7]], np.uint8)
    flipped = inverted(image)
    assert flipped.dtype == np.uint8 and flipped.min() == 3 and flipped.max() == 200
    np.testing.assert_array_equal(flipped, [[200, 3], [153, 196]])
    wide = np.array([[100, 60000]], np.uint16)
    np.testing.assert_array_equal(inverted(wide), [[60000, 100]])
    np.testing.assert_array_equal(inverted(inverted(image)), image)
