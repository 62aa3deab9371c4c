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


def test_rods_are_their_own_kind():
    from bench.evaluate import elongated, kinds

    rods = np.zeros((64, 64), np.int32)
    rods[5:10, 5:40], rods[20:25, 10:50], rods[40:46, 2:30] = 1, 2, 3
    discs = np.zeros((64, 64), np.int32)
    yy, xx = np.mgrid[:64, :64]
    discs[(yy - 20) ** 2 + (xx - 20) ** 2 < 64] = 1
    discs[(yy - 45) ** 2 + (xx - 40) ** 2 < 81] = 2
    assert elongated(rods) and not elongated(discs) and not elongated(np.zeros((8, 8), np.int32))
    image = np.where(rods > 0, 50, 200).astype(np.uint8)
    assert kinds(image, rods, slice(None))[0] == "dark particles" and "elongated (rods)" in kinds(image, rods, slice(None))
