"""The scale check: an image shrunk for an estimated diameter keeps the scale whose particles the network is surest of."""

import numpy as np
import pytest
from skimage.transform import resize

from napari_nanogan import config
from napari_nanogan.segmentation import pipeline


def _fake_labels_at(best: float, asked: list, peak: float = 0.9, empty_at: float | None = None):
    """A stand-in for the network at each factor: one particle whose confidence peaks at factor ``best``
    (none at all at ``empty_at``)."""
    def labels_at(grey, segmenter, rows, bar, factor, tile, overlap, postprocess):
        asked.append(round(factor, 4))
        yield pipeline.Progress(0, 1, "segmenting")
        labels = np.zeros(grey.shape, np.uint32)
        if empty_at is not None and abs(factor - empty_at) < 1e-3:
            return labels, np.zeros(0, np.float32), labels.astype(np.uint8), labels.astype(np.uint8), segmenter
        labels[2:6, 2:6] = 1
        confidence = np.array([peak - 0.2 * abs(np.log2(factor / best))], np.float32)
        nothing = np.zeros(grey.shape, np.uint8)
        return labels, confidence, nothing, nothing.copy(), segmenter
    return labels_at


@pytest.mark.parametrize("start, best, kept", [
    (1 / 8, 1 / 2, 1 / 8 * 2),          # two steps of sqrt(2) up, no more (SCALE_MOVES)
    (1 / 4, 1 / 2 ** 1.5, 1 / 2 ** 1.5),  # one step up
    (1 / 2, 1 / 2, 1 / 2),              # the estimate's scale is the surest: kept
    (1 / 2 ** 0.5, 1.0, 1.0),           # never larger than the image's own
    (1 / 4, 1 / 16, 1 / 8),             # down, never under MIN_RESIZE
    (0.15, 1 / 16, 1 / 8),              # down one step, clipped at MIN_RESIZE, and no further
    (0.69, 1.0, 1.0),                   # 0.69 * sqrt(2) = 0.976 is the image's own scale, not a resampling
])
def test_the_scale_moves_toward_the_surest_one_within_bounds(monkeypatch, start, best, kept):
    asked = []
    monkeypatch.setattr(pipeline, "_labels_at", _fake_labels_at(best, asked))
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", start) == pytest.approx(kept, rel=1e-3)
    assert max(asked) <= 1.0 and min(asked) >= config.MIN_RESIZE - 1e-9
    assert len(asked) == len(set(asked))  # no scale segmented twice


def test_a_scale_without_particles_is_never_kept(monkeypatch):
    asked = []
    monkeypatch.setattr(pipeline, "_labels_at", _fake_labels_at(1 / 2, asked, empty_at=0.25 * 2**0.5))
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", 0.25) == pytest.approx(0.25)


def test_scales_at_which_the_image_is_too_small_to_segment_are_not_tried(monkeypatch):
    """A small crop of large particles: one more step down would leave the network 6 x 8 px."""
    asked = []
    monkeypatch.setattr(pipeline, "_labels_at", _fake_labels_at(1 / 16, asked))
    assert pipeline.surest_scale(np.zeros((48, 64), np.uint8), "net", 0.176) == pytest.approx(0.176)
    assert min(asked) == pytest.approx(0.176)


def test_the_status_line_says_which_scale_was_kept_and_why():
    from napari_nanogan.segmentation import SegmentationResult

    nothing = np.zeros((8, 8), np.uint32)
    line = SegmentationResult(labels=nothing, foreground=nothing, interior=nothing, info_bar=None, diameter_px=34.0,
                              diameter_estimated=True, scale=1.0, estimate_scale=24 / 34).describe()
    assert "image segmented at its own scale, not 1.4 times smaller as estimated" in line
    line = SegmentationResult(labels=nothing, foreground=nothing, interior=nothing, info_bar=None, diameter_px=137.0,
                              diameter_estimated=True, scale=0.25, estimate_scale=24 / 137).describe()
    assert "image made 4 times smaller, not 5.7 times smaller as estimated" in line
    assert line.count("times smaller") == 2


def test_a_gain_under_the_margin_keeps_the_estimate(monkeypatch):
    asked = []
    monkeypatch.setattr(pipeline, "_labels_at", _fake_labels_at(0.25, asked))
    # the smaller neighbour, 0.25, is surer than 0.25 * sqrt(2) by 0.2 * 0.5 = 0.1: it is taken ...
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", 0.25 * 2**0.5) == pytest.approx(0.25, rel=1e-3)
    monkeypatch.setattr(config, "SCALE_SHRINK_MARGIN", 0.2)  # ... unless the margin asks for more
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", 0.25 * 2**0.5) == pytest.approx(0.25 * 2**0.5)


def test_a_smaller_scale_must_be_clearly_surer_a_larger_one_only_about_as_sure(monkeypatch):
    """Shrinking merges neighbours into blobs the network is as sure of: a small gain there is no reason to shrink."""
    def flat(confidence_at):
        def labels_at(grey, segmenter, rows, bar, factor, tile, overlap, postprocess):
            yield pipeline.Progress(0, 1, "segmenting")
            labels = np.zeros(grey.shape, np.uint32)
            labels[2:6, 2:6] = 1
            nothing = np.zeros(grey.shape, np.uint8)
            return labels, np.array([confidence_at(factor)], np.float32), nothing, nothing.copy(), segmenter
        return labels_at
    grey = np.zeros((64, 64), np.uint8)
    # a BAM montage's scales (estimate 30.5 px for 24-px particles): 0.557 -> 0.900, 0.787 -> 0.889, 1.0 -> 0.886
    montage = {0.557: 0.900, 0.787: 0.889, 1.0: 0.886}
    monkeypatch.setattr(pipeline, "_labels_at", flat(lambda f: montage[min(montage, key=lambda k: abs(k - f))]))
    assert pipeline.surest_scale(grey, "net", 0.787) == 1.0


def test_on_a_plateau_of_confidence_the_image_is_shrunk_less(monkeypatch):
    """Shrunk too far, neighbours merge into particles the network is just as sure of: the larger scale wins ties."""
    asked = []

    def plateau(grey, segmenter, rows, bar, factor, tile, overlap, postprocess):
        asked.append(round(factor, 4))
        yield pipeline.Progress(0, 1, "segmenting")
        labels = np.zeros(grey.shape, np.uint32)
        labels[10:20, 10:20] = 1
        confidence = np.array([0.95 - 0.005 * (factor > 0.2) if factor <= 0.5 else 0.7], np.float32)
        nothing = np.zeros(grey.shape, np.uint8)
        return labels, confidence, nothing, nothing.copy(), segmenter
    monkeypatch.setattr(pipeline, "_labels_at", plateau)
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", 1 / 8) == pytest.approx(1 / 4)
    asked.clear()
    assert pipeline.surest_scale(np.zeros((64, 64), np.uint8), "net", 0.5) == pytest.approx(0.5)  # 0.7 is no tie
    assert sorted(asked) == [pytest.approx(0.3536, abs=1e-3), 0.5, pytest.approx(0.7071, abs=1e-3)]


@pytest.fixture(scope="module")
def large_particles():
    """A procedural SEM field of particles about 72 px across (the package's renderer, enlarged 3 times)."""
    from napari_nanogan.data.procedural import particle_labels, render_sem

    labels = particle_labels((220, 300), n_particles=60, mean_diameter=24.0, seed=5)
    image = render_sem(labels, seed=6)
    big = resize(image.astype(np.float32), (660, 900), order=1, preserve_range=True).astype(np.uint8)
    truth = resize(labels, (660, 900), order=0, preserve_range=True, anti_aliasing=False).astype(np.uint32)
    return big, truth


def test_an_estimate_three_times_too_large_is_corrected(monkeypatch, large_particles):
    """The size model misjudges kinds of image it never saw: the scale check finds a better scale, and F1 follows."""
    from napari_nanogan.metrics.segmentation import instance_scores
    from napari_nanogan.segmentation import load_segmenter, segment

    image, truth = large_particles
    monkeypatch.setattr(pipeline, "estimate_diameter", lambda *a, **k: 216.0)  # the truth: about 72 px
    model = load_segmenter("default")
    kept = segment(image, model, diameter="auto", info_bar=None, small_pass=False, scale_check=False)
    checked = segment(image, model, diameter="auto", info_bar=None, small_pass=False)
    assert kept.scale == pytest.approx(1 / 8) and kept.estimate_scale is None
    assert checked.estimate_scale == pytest.approx(1 / 8) and checked.scale > 1 / 8
    assert "surer" in checked.describe()
    f1 = {}
    for name, result in (("kept", kept), ("checked", checked)):
        s = instance_scores(truth, result.labels)
        f1[name] = 2 * s["tp"] / (2 * s["tp"] + s["fp"] + s["fn"])
    assert f1["checked"] > f1["kept"] + 0.1, f1


@pytest.fixture
def asked(monkeypatch):
    """The factors the network is run at, in order (the real network runs)."""
    factors = []
    real = pipeline._labels_at

    def counting(grey, segmenter, rows, bar, factor, *rest):
        factors.append(factor)
        return (yield from real(grey, segmenter, rows, bar, factor, *rest))
    monkeypatch.setattr(pipeline, "_labels_at", counting)
    return factors


def test_the_finer_pass_follows_the_scale_kept(monkeypatch, large_particles, asked):
    from napari_nanogan.segmentation import load_segmenter, segment
    from napari_nanogan.segmentation.smallpass import small_pass_factor

    image, _ = large_particles
    monkeypatch.setattr(pipeline, "estimate_diameter", lambda *a, **k: 216.0)
    result = segment(image, load_segmenter("default"), diameter="auto", info_bar=None)
    assert result.estimate_scale == pytest.approx(1 / 8) and result.scale > 1 / 8
    assert asked[-1] == pytest.approx(small_pass_factor(result.scale))


def test_a_given_diameter_is_not_second_guessed(large_particles, asked):
    from napari_nanogan.segmentation import load_segmenter, segment

    image, _ = large_particles
    result = segment(image[:256, :256], load_segmenter("default"), diameter=150.0, info_bar=None, small_pass=False)
    assert asked and all(a == pytest.approx(24 / 150) for a in asked)  # (the polarity check may add one: same scale)
    assert result.estimate_scale is None


def test_block_by_block_the_plan_checks_the_scale_on_a_centre_crop(monkeypatch, large_particles):
    """A large image segmented block by block uses the scale the check chose on its centre, for every block."""
    from napari_nanogan.segmentation import blockwise, load_segmenter

    image, _ = large_particles
    monkeypatch.setattr(blockwise, "estimate_diameter", lambda *a, **k: 216.0)
    model = load_segmenter("default")
    plain = blockwise.plan_blockwise(image, model, diameter="auto", scale_check=False)
    checked = blockwise.plan_blockwise(image, model, diameter="auto")
    assert plain.factor == pytest.approx(1 / 8) and plain.estimate_scale is None
    assert checked.estimate_scale == pytest.approx(1 / 8) and checked.factor > 1 / 8
    assert checked.postprocess.min_area < plain.postprocess.min_area  # the post-processing follows the scale
    from napari_nanogan.segmentation.smallpass import small_pass_factor

    assert checked.fine_factor == pytest.approx(small_pass_factor(checked.factor))  # and the finer pass
    assert not np.allclose(checked.statistics[0][0], plain.statistics[0][0])  # statistics of the image at that scale
    assert checked.margin < plain.margin  # the particles are smaller than estimated: a margin of 3 of them
    assert checked.fingerprint() != plain.fingerprint()
    from pathlib import Path

    from napari_nanogan.segmentation.zarrjob import ZarrResult

    assert "surer" in ZarrResult(path=Path("x"), count=1, plan=checked).describe()
    assert "surer" not in ZarrResult(path=Path("x"), count=1, plan=plain).describe()
    from napari_nanogan.cli.cluster import _zarr_line  # the CLI's line for a zarr input, as for a file

    done = ZarrResult(path=Path("x_labels.zarr"), count=5, plan=checked)
    assert "estimated particle diameter 216 px (1.59 µm)" in _zarr_line("x.zarr", done, "default", {"pixel_size_nm": 7.344})
    assert "pixel size unknown" in _zarr_line("x.zarr", done, "default", {"pixel_size_nm": None})
    again = _zarr_line("x.zarr", ZarrResult(path=Path("x_labels.zarr"), count=5, plan=checked, skipped=True), "default",
                       {"pixel_size_nm": 7.344})
    assert again == "x.zarr: already complete (5 particles); not redone (x_labels.zarr)"
