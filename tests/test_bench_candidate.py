import pytest

from bench.candidate import standing_in
from napari_nanogan.models import registry
from napari_nanogan.segmentation import load_segmenter


def _weights(segmenter):
    return next(iter(segmenter.network.state_dict().values()))


def test_a_candidate_stands_in_for_the_shipped_default_and_only_while_asked(tiny_checkpoint):
    shipped = _weights(load_segmenter("default"))
    with standing_in(str(tiny_checkpoint)):
        candidate = load_segmenter("default")
        assert _weights(candidate).shape != shipped.shape  # the tiny network, not the shipped one
        assert registry.shipped_path("segmenter_sem_tio2.pt").is_file()  # the other shipped files stay
    assert _weights(load_segmenter("default")).equal(shipped)


def test_a_missing_candidate_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no such checkpoint"):
        with standing_in(str(tmp_path / "nope.pt")):
            pass
