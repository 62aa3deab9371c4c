"""The size model behind segment(..., diameter="auto"): features, fitting, storage, use."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import constant_size_model

from napari_nanogan.segmentation.sizing import FEATURES_PER_SCALE, SIZE_SCALES, SizeModel, size_features
from napari_nanogan.measure import median_diameter
from napari_nanogan.training.sizing import fit_size_model, size_errors


def test_size_features_have_one_block_per_scale(tiny_segmenter, sem_like):
    image, _ = sem_like
    features = size_features(image, tiny_segmenter)
    assert features.shape == (len(SIZE_SCALES) * FEATURES_PER_SCALE,) and np.isfinite(features).all()
    # deterministic: the same image gives the same features
    np.testing.assert_array_equal(features, size_features(image, tiny_segmenter))


def test_size_features_of_a_tiny_image_repeat_the_last_scale(tiny_segmenter):
    image = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    features = size_features(image, tiny_segmenter).reshape(len(SIZE_SCALES), -1)
    # 40 px at 1/2 is under 32 px: the coarser scales repeat the full-scale block
    np.testing.assert_array_equal(features[1], features[0])
    np.testing.assert_array_equal(features[3], features[0])


def test_fit_learns_a_known_relation_and_reports_each_domain():
    rng = np.random.default_rng(1)
    n = 150
    x = rng.uniform(-1, 1, size=(n, 2))
    log_d = 3.5 + 1.2 * x[:, 0] - 0.5 * x[:, 1]
    domains = ["a"] * 120 + ["b"] * 30
    model = fit_size_model(x, np.exp(log_d), domains)
    assert model.k in (3, 5, 7, 11, 15)
    cv = model.metrics["cross_validated"]
    assert set(cv) == {"a", "b"} and cv["a"]["within_25pct"] > 0.9 and cv["b"]["within_25pct"] > 0.8
    new = rng.uniform(-0.8, 0.8, size=(20, 2))
    pred = np.array([model.predict(v) for v in new])
    truth = np.exp(3.5 + 1.2 * new[:, 0] - 0.5 * new[:, 1])
    assert np.median(np.abs(pred / truth - 1)) < 0.15
    # a relation it cannot see (diameters unrelated to the features) cross-validates badly
    shuffled = fit_size_model(x, np.exp(rng.permutation(log_d)), domains)
    assert shuffled.metrics["cross_validated"]["a"]["median_abs_error"] > 3 * cv["a"]["median_abs_error"]


def test_fit_refuses_too_few_or_unannotated_images():
    with pytest.raises(ValueError, match="at least"):
        fit_size_model(np.zeros((8, 2)), np.ones(8), ["a"] * 8)
    with pytest.raises(ValueError, match="at least"):
        fit_size_model(np.zeros((12, 2)), np.r_[np.ones(11), np.nan], ["a"] * 12)


def test_copies_of_one_image_share_a_fold():
    """A shrunk copy must not predict its own original in cross-validation."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    copies = np.repeat(x, 6, axis=0) + rng.normal(0, 1e-3, size=(240, 3))  # each image and 5 near-identical copies
    d = np.exp(rng.uniform(2, 5, 40)).repeat(6)  # diameters unrelated to the features
    twins = [str(i) for i in range(40) for _ in range(6)]
    leaky = fit_size_model(copies, d, ["a"] * 240)
    grouped = fit_size_model(copies, d, ["a"] * 240, groups=twins)
    # with the copies spread over the folds each image "finds" its own: a cross-validation that lies
    assert leaky.metrics["cross_validated"]["a"]["median_abs_error"] < 0.05
    assert grouped.metrics["cross_validated"]["a"]["median_abs_error"] > 0.2


def test_shrunk_copies_are_small_noisy_references(sem_like):
    from napari_nanogan.data.datasets import sample_from_arrays
    from napari_nanogan.training.sizing import SMALL_DIAMETERS, shrunk_copies

    big = np.zeros((500, 500), np.int32)  # 20-px particles shrunk to 4 px: 100 px, still a copy
    centres = [(y, x) for y in range(30, 500, 60) for x in range(30, 500, 60)]
    yy, xx = np.mgrid[:500, :500]
    for i, (cy, cx) in enumerate(centres, 1):
        big[(yy - cy) ** 2 + (xx - cx) ** 2 <= 10 ** 2] = i  # 64 particles of about 20 px
    rng = np.random.default_rng(0)
    image = (60 + 120 * (big > 0) + rng.normal(0, 10, big.shape)).clip(0, 255).astype(np.uint8)
    samples = [sample_from_arrays("disc", image, big, domain="x", crop_info_bar=False),
               sample_from_arrays("tiny", image[:120, :120], big[:120, :120] > 0, domain="x", crop_info_bar=False)]
    for seed in range(5):  # whatever the drawn size: one copy, of the large image only
        assert [c[2] for c in shrunk_copies(samples, seed=seed)] == ["disc"]
    copies = shrunk_copies(samples, seed=0)
    assert len(copies) == 1  # the 120-px image would shrink under 96 px
    copy, diameter, original = copies[0]
    assert original == "disc" and copy.domain == "x-shrunk"
    assert SMALL_DIAMETERS[0] <= diameter <= SMALL_DIAMETERS[1]
    factor = diameter / median_diameter(big)
    assert copy.image.shape == (round(500 * factor), round(500 * factor))
    # the pixel noise survives the shrinking (plain anti-aliased resizing would divide it by about 1 / factor)
    from skimage.transform import resize
    small_labels = resize(big > 0, copy.image.shape, order=0) > 0
    from scipy import ndimage as ndi
    away = ~ndi.binary_dilation(small_labels, iterations=2)
    assert np.std(copy.image[away]) > 0.6 * 10
    assert shrunk_copies(samples, seed=0)[0][1] == diameter  # reproducible


def test_median_diameter_and_errors():
    labels = np.zeros((50, 50), np.int32)
    labels[:10, :10] = 1  # 100 px
    labels[20:24, 20:24] = 2  # 16 px
    labels[30:40, 30:40] = 3  # 100 px
    assert median_diameter(labels) == pytest.approx(2 * np.sqrt(100 / np.pi))
    assert np.isnan(median_diameter(np.zeros((5, 5), np.int32)))
    e = size_errors(np.array([10.0, 20.0, 30.0]), np.array([10.0, 10.0, 25.0]))
    assert e["median_abs_error"] == pytest.approx(0.2) and e["within_1.5x"] == pytest.approx(2 / 3, abs=1e-4)


def test_size_model_round_trips_through_a_checkpoint(tmp_path, tiny_checkpoint):
    import torch

    from napari_nanogan.segmentation import Segmenter
    from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint

    n = len(SIZE_SCALES) * FEATURES_PER_SCALE
    rng = np.random.default_rng(0)
    model = SizeModel(rng.normal(size=n), np.ones(n) * 2, rng.normal(size=(30, n)), rng.normal(3, 1, size=30), 5,
                      {"k": 5})
    data = load_checkpoint(tiny_checkpoint, kind="segmenter")
    data.pop("format_version")
    save_checkpoint(tmp_path / "sized.pt", {**data, "size_model": model.to_dict()})
    torch.load(tmp_path / "sized.pt", weights_only=True)  # plain data only
    loaded = Segmenter.from_checkpoint(tmp_path / "sized.pt", device="cpu").size_model
    x = rng.normal(size=n)
    assert loaded.predict(x) == pytest.approx(model.predict(x), rel=1e-5)
    assert loaded.metrics == {"k": 5}
    with pytest.raises(ValueError, match="refit"):
        SizeModel.from_dict(dict(model.to_dict(), scales=[1.0, 0.5]))
    with pytest.raises(ValueError, match="refit"):
        SizeModel.from_dict(dict(model.to_dict(), reference=torch.zeros(30, 5)))
    # a checkpoint whose size model an older version fitted (one 768-px window at every scale)
    # still loads: its network works, only diameter="auto" needs a refit
    old = {k: v for k, v in model.to_dict().items() if k != "windows"} | {"window": 768}
    save_checkpoint(tmp_path / "old.pt", {**data, "size_model": old})
    with pytest.warns(UserWarning, match="size model not loaded"):
        segmenter = Segmenter.from_checkpoint(tmp_path / "old.pt", device="cpu")
    assert segmenter.size_model is None


def test_auto_diameter_needs_a_size_model(tiny_segmenter, sem_like):
    from napari_nanogan.segmentation import segment

    assert tiny_segmenter.size_model is None
    with pytest.raises(ValueError, match="no size model"):
        segment(sem_like[0], tiny_segmenter, diameter="auto")
    with pytest.raises(ValueError, match='"auto"'):
        segment(sem_like[0], tiny_segmenter, diameter="large")


@pytest.mark.parametrize("estimate, shrinks", [(20.0, False), (29.0, False), (30.0, True), (96.0, True)])
def test_auto_diameter_resizes_only_for_clearly_large_particles(tiny_segmenter, sem_like, network_input_shapes,
                                                                estimate, shrinks):
    from napari_nanogan.config import AUTO_MIN_RATIO
    from napari_nanogan.segmentation import segment

    image, _ = sem_like
    sized = dataclasses.replace(tiny_segmenter, size_model=constant_size_model(estimate))
    network_input_shapes.clear()
    result = segment(image, sized, diameter="auto", small_pass=False, scale_check=False)  # (tests/test_scale_check.py)
    assert result.diameter_px == pytest.approx(estimate, rel=1e-5)
    assert result.labels.shape == image.shape
    last = network_input_shapes[-1]  # the segmentation pass (the size features ran first)
    specimen_rows = result.info_bar.start if result.info_bar is not None else image.shape[0]
    assert (estimate >= AUTO_MIN_RATIO * sized.diameter_px) == shrinks
    if shrinks:
        assert last[0] == round(specimen_rows * sized.diameter_px / estimate)
    else:
        assert last[0] in (specimen_rows, image.shape[0])


@pytest.mark.parametrize("estimate, finer", [(40.0, None), (48.0, 1.0), (192.0, 0.5)])
def test_images_made_at_least_twice_smaller_get_a_finer_pass(tiny_segmenter, sem_like, network_input_shapes,
                                                             estimate, finer):
    from napari_nanogan.segmentation import segment

    image, _ = sem_like
    sized = dataclasses.replace(tiny_segmenter, size_model=constant_size_model(estimate))
    network_input_shapes.clear()
    segment(image, sized, diameter="auto", small_pass=False, scale_check=False)
    without = list(network_input_shapes)
    network_input_shapes.clear()
    result = segment(image, sized, diameter="auto", scale_check=False)
    specimen_rows = result.info_bar.start if result.info_bar is not None else image.shape[0]
    if finer is None:
        assert network_input_shapes == without and result.small_added == 0
    else:  # the shrunk pass, then the finer one, four times larger (at most the image's own scale)
        assert network_input_shapes[: len(without)] == without and len(network_input_shapes) > len(without)
        assert network_input_shapes[-1][0] == round(specimen_rows * finer)
        assert result.labels.max() >= result.small_added >= 0
        assert len(result.confidence) == result.labels.max()


def test_size_features_look_at_bounded_windows_of_large_images(tiny_segmenter, network_input_shapes):
    from napari_nanogan.segmentation.sizing import SIZE_WINDOWS

    image = np.random.default_rng(2).integers(0, 255, (2500, 3100), dtype=np.uint8)
    features = size_features(image, tiny_segmenter)
    assert np.isfinite(features).all()
    assert len(network_input_shapes) == len(SIZE_SCALES)
    assert [max(shape) for shape in network_input_shapes[:-1]] == list(SIZE_WINDOWS[:-1]), network_input_shapes
    # the coarsest scale sees the whole image: 2500 x 3100 / 8
    assert network_input_shapes[-1] == (round(2500 / 8), round(3100 / 8))


@pytest.mark.parametrize("shape", [(8, 8), (20, 300), (31, 400)])
def test_auto_diameter_on_images_too_small_to_estimate_segments_them_as_they_are(tiny_segmenter, shape):
    """The CLI estimates by default: an image under 32 px a side must still be segmented."""
    from napari_nanogan.segmentation import segment

    sized = dataclasses.replace(tiny_segmenter, size_model=constant_size_model(96.0))
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    with pytest.raises(ValueError, match="too small to estimate"):
        size_features(image, sized)
    result = segment(image, sized, diameter="auto", info_bar=None)
    assert result.labels.shape == shape and result.diameter_px is None


class _Brightness(torch.nn.Module):
    """A stand-in network: foreground where the normalised image is bright, interior likewise (no learning)."""

    def __init__(self):
        from napari_nanogan.config import SegmenterConfig

        super().__init__()
        self.config = SegmenterConfig(depth=2)
        self.gain = torch.nn.Parameter(torch.tensor(30.0))

    def forward(self, x):
        depth = -F.max_pool2d(-(x - 0.5), 9, stride=1, padding=4)  # brighter than mid-grey 4 px inwards
        return self.gain * torch.cat([x - 0.5, depth], 1)


def _discs(diameter: float, shape=(512, 512), n=12, seed=0):
    from napari_nanogan.data.procedural import particle_labels

    labels = particle_labels(shape, n_particles=n, mean_diameter=diameter, spread=0.05, elongation=0.0,
                             clustering=0.0, overlap=0.0, seed=seed)
    return np.where(labels > 0, 200, 30).astype(np.uint8), labels


def test_coarse_sizing_sees_large_particles_and_leaves_small_ones_to_the_image_scale(tmp_path):
    from napari_nanogan.segmentation import Segmenter, segment
    from napari_nanogan.segmentation.sizing import CoarseSizing, can_estimate_diameter, coarse_diameter

    seg = Segmenter.from_network(_Brightness(), device="cpu")
    assert not can_estimate_diameter(seg)
    seg.coarse_sizing = CoarseSizing(shrink_above=48.0)
    assert can_estimate_diameter(seg)
    big, big_labels = _discs(100.0, n=10)
    estimate = coarse_diameter(big, seg, sizing=seg.coarse_sizing)
    assert estimate == pytest.approx(median_diameter(big_labels), rel=0.15)
    small, small_labels = _discs(8.0, n=200, seed=1)
    assert coarse_diameter(small, seg, sizing=seg.coarse_sizing) is None  # 2 px at a quarter: gone
    result = segment(small, seg, diameter="auto", info_bar=None)
    assert result.diameter_estimated and result.diameter_px == pytest.approx(median_diameter(small_labels), rel=0.2)
    shrunk = segment(big, seg, diameter="auto", info_bar=None)
    assert shrunk.diameter_estimated and shrunk.diameter_px == pytest.approx(estimate)
    assert CoarseSizing.from_dict(seg.coarse_sizing.to_dict()) == seg.coarse_sizing


def test_a_small_estimate_enlarges_the_image_and_says_so(tiny_segmenter, sem_like, network_input_shapes, monkeypatch):
    from napari_nanogan import config
    from napari_nanogan.segmentation import segment

    image, _ = sem_like
    sized = dataclasses.replace(tiny_segmenter, size_model=constant_size_model(8.0))
    network_input_shapes.clear()
    result = segment(image, sized, diameter="auto")
    specimen_rows = result.info_bar.start if result.info_bar is not None else image.shape[0]
    # 8 px: enlarged twice (at most), then the scale check's pass at the image's own scale
    rows_seen = {shape[0] for shape in network_input_shapes}
    assert max(rows_seen) >= 2 * specimen_rows - 2 and rows_seen & {specimen_rows, image.shape[0]}
    assert result.scale == 2.0 and result.labels.shape == image.shape
    assert "estimated particle diameter 8 px" in result.describe() and "enlarged 2 times" in result.describe()
    assert "diameter given" not in result.describe()
    middle = segment(image, dataclasses.replace(tiny_segmenter, size_model=constant_size_model(20.0)), diameter="auto")
    assert middle.scale == 1.0 and "enlarged" not in middle.describe()

    monkeypatch.setattr(config, "AUTO_ENLARGE_BELOW", 0.0)  # estimates never enlarge: the user is told to type it
    network_input_shapes.clear()
    result = segment(image, sized, diameter="auto")
    assert network_input_shapes[-1][0] in (specimen_rows, image.shape[0]) and result.scale == 1.0
    assert "diameter given" in result.describe()


def test_estimate_thresholds_follow_the_models_particle_size():
    """The enlargement thresholds were set for networks made to see 24-px particles; a network trained
    at 48 px enlarges below 24 px and keeps an enlargement whose particles measure under 30 px."""
    from napari_nanogan.segmentation.sizing import auto_enlarge_below, enlargement_holds, estimate_factor

    assert auto_enlarge_below(24.0) == 12.0 and auto_enlarge_below(48.0) == 24.0

    class Sizer:
        size_model, coarse_sizing = object(), None

        def __init__(self, diameter_px):
            self.diameter_px = diameter_px

    assert estimate_factor(16.0, Sizer(24.0)) == 1.0  # between the thresholds: the image's own scale
    assert estimate_factor(16.0, Sizer(48.0)) == 2.0  # a third of the model's size: enlarged (at most 2x)
    assert estimate_factor(10.0, Sizer(24.0)) == pytest.approx(2.0)
    _, labels = _discs(22.0, n=12)  # particles of about 22 px found
    assert not enlargement_holds(labels) and not enlargement_holds(labels, 24.0)
    assert enlargement_holds(labels, 48.0)


def test_the_estimated_diameter_is_said_in_the_files_unit_and_in_micrometres_from_1000_nm():
    import numpy as np

    from napari_nanogan.segmentation.pipeline import SegmentationResult

    result = SegmentationResult(labels=np.zeros((4, 4), np.uint32), foreground=None, interior=None, info_bar=None,
                                diameter_px=137.0, diameter_estimated=True)
    assert "estimated particle diameter 137 px (6.85 µm)" in result.describe(pixel_size=50.0)
    assert "137 px (685 nm)" in result.describe(pixel_size=5.0)
    assert "137 px," in result.describe() + "," and "(" not in result.describe()


def test_the_enlargement_verdict_in_each_case():
    """An enlargement is undone where its particles are not small or it finds none the own scale finds; with the
    own scale seen by the same network, where that is more than SCALE_ENLARGE_MARGIN surer; else kept."""
    from napari_nanogan.config import SCALE_ENLARGE_MARGIN
    from napari_nanogan.segmentation.pipeline import enlargement_verdict

    _, small = _discs(8.0, n=60)
    _, large = _discs(22.0, n=12)
    empty = np.zeros_like(small)

    def found(labels, confidence):
        return labels, np.full(int(labels.max()), confidence, np.float32)

    sure = 0.6 + SCALE_ENLARGE_MARGIN
    assert enlargement_verdict(found(small, 0.59), found(small, sure)) == "checked"
    assert enlargement_verdict(found(small, 0.61), found(small, sure)) == "kept"
    assert enlargement_verdict(found(small, 0.3), None) == "kept"  # the own scale not segmented: nothing to compare
    assert enlargement_verdict(found(large, 0.9), found(large, 0.5)) == "rejected"  # not small, however sure
    assert enlargement_verdict(found(empty, 0.0), found(large, 0.5)) == "rejected"
    assert enlargement_verdict(found(empty, 0.0), found(empty, 0.0)) == "kept"  # none anywhere: as estimated
    assert enlargement_verdict(found(large, 0.9), found(large, 0.5), 48.0) == "kept"  # small for a 48-px network
