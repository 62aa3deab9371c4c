"""bench.edge_tone: grey levels by distance to the particles' outline (measured, not kept)."""

import numpy as np
import pytest

from bench.edge_tone import EDGE_TONE_BINS, EdgeTone, edge_zones

SEAM = len(EDGE_TONE_BINS) - 1


def two_touching_discs(shape=(96, 128)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    labels[(yy - 48) ** 2 + (xx - 40) ** 2 < 20**2] = 1
    labels[((yy - 48) ** 2 + (xx - 76) ** 2 < 18**2) & (labels == 0)] = 2
    return labels


def rendered(labels, rim_gain, seed):
    """Particles whose brightness grows towards their outline by ``rim_gain``, on a noisy substrate."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    depth = ndi.distance_transform_edt(labels > 0)
    image = np.where(labels > 0, 110 + rim_gain * np.exp(-depth / 3), 35.0) + rng.normal(0, 3, labels.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def test_edge_zones_follow_the_outline_and_the_seams():
    labels = two_touching_discs()
    zones = edge_zones(labels)
    assert zones[0, 0] == -1  # far substrate: left alone
    assert zones[48, 40] == len(EDGE_TONE_BINS) - 2  # deep inside the first disc
    assert zones[48, 40 - 20] in (EDGE_TONE_BINS.index(0), EDGE_TONE_BINS.index(0) - 1)  # on its outline
    assert (zones[48, 58:62] == SEAM).all() and zones[48, 55] != SEAM and not (zones[labels == 0] == SEAM).any()
    assert (edge_zones(np.zeros((16, 16), np.int32)) == -1).all()


def test_fit_maps_the_profile_and_round_trips():
    labels = two_touching_discs()
    real = [rendered(labels, 80, s) for s in range(3)]
    flat = [rendered(labels, 0, 10 + s) for s in range(3)]  # the generator's flat particles
    tone = EdgeTone.fit(real, flat, [labels] * 3)
    out = tone.apply(rendered(labels, 0, 99), labels)
    target = rendered(labels, 80, 98)
    outline = (edge_zones(labels) == EDGE_TONE_BINS.index(1)) & (labels > 0)
    assert abs(float(np.mean(out[outline])) - float(np.mean(target[outline]))) < 4
    assert np.mean(target[outline]) - np.mean(rendered(labels, 0, 99)[outline]) > 40  # it had something to fix
    far = edge_zones(labels) == -1
    assert np.array_equal(out[far], rendered(labels, 0, 99)[far])  # far substrate untouched
    assert out.dtype == np.uint8 and out.shape == labels.shape
    again = EdgeTone.from_dict(tone.to_dict())
    assert np.array_equal(again.apply(rendered(labels, 0, 99), labels), out)
    # fitting on identical sets is the identity (up to rounding)
    same = EdgeTone.fit(real, real, [labels] * 3)
    assert np.abs(same.apply(real[0], labels).astype(int) - real[0]).max() <= 1


def test_fit_refuses_mismatched_shapes_and_old_bins():
    labels = two_touching_discs()
    with pytest.raises(ValueError, match="same shape"):
        EdgeTone.fit([np.zeros((10, 10), np.uint8)], [rendered(labels, 0, 0)], [labels])
    data = EdgeTone.fit([rendered(labels, 80, 0)], [rendered(labels, 0, 1)], [labels]).to_dict()
    data["bins"] = [0, 1]
    with pytest.raises(ValueError, match="other distance bins"):
        EdgeTone.from_dict(data)
