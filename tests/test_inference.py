import warnings

import numpy as np
import pytest

from napari_nanogan.segmentation import SegmentationResult, segment
from napari_nanogan.segmentation.tiles import probability_steps
from napari_nanogan.io.infobar import InfoBar


def _probs(image, segmenter, **kw):
    steps = probability_steps(image, segmenter, **kw)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


@pytest.fixture(scope="module")
def tiny_bn_segmenter():
    """Batch norm in eval mode: a network whose output does not depend on the tile, so
    these tests check the tiling and blending mechanism itself."""
    import torch

    from napari_nanogan.config import SegmenterConfig
    from napari_nanogan.segmentation import Segmenter
    from napari_nanogan.models.attention_unet import AttentionUNet

    torch.manual_seed(0)
    return Segmenter.from_network(AttentionUNet(SegmenterConfig(base_channels=4, depth=3, norm="batch")), device="cpu")


def test_tiled_equals_untiled(tiny_bn_segmenter, rng):
    image = rng.integers(0, 255, (150, 230), dtype=np.uint8)
    whole_fg, whole_int = _probs(image, tiny_bn_segmenter, tile=256, overlap=0)
    tiled_fg, tiled_int = _probs(image, tiny_bn_segmenter, tile=64, overlap=24)
    # uint8 probabilities: differences come from the limited field of view at tile borders only
    diff = np.abs(whole_fg.astype(int) - tiled_fg.astype(int))
    assert np.mean(diff) < 2.0 and np.percentile(diff, 99) <= 8
    diff_i = np.abs(whole_int.astype(int) - tiled_int.astype(int))
    assert np.mean(diff_i) < 2.0


def test_tiling_leaves_no_seams(tiny_bn_segmenter):
    """A smooth input gives a smooth output: no jump at tile borders."""
    yy, xx = np.mgrid[0:192, 0:192]
    image = (100 + 50 * np.sin(xx / 20) * np.cos(yy / 25)).astype(np.float32)
    fg, _ = _probs(image, tiny_bn_segmenter, tile=64, overlap=16)
    step = np.abs(np.diff(fg.astype(int), axis=1))
    border_cols = [63 - 1, 111 - 1]  # last column of the first tile, blended region ends
    assert step[:, border_cols].mean() <= step.mean() + 2


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
def test_input_dtypes(tiny_segmenter, sem_like, dtype):
    image, _ = sem_like
    scaled = image.astype(np.float64) * (257 if dtype == np.uint16 else 1)
    if np.issubdtype(dtype, np.floating):
        scaled = scaled / 255.0
    res = segment(scaled.astype(dtype), tiny_segmenter, tile=128)
    assert isinstance(res, SegmentationResult)
    assert res.labels.shape == image.shape and res.labels.dtype == np.uint32


def test_float64_values_beyond_float32_segment_as_their_scaled_image(tiny_segmenter, sem_like):
    """Finite float64 values over 3.4e38 were taken for infinite (the normalisation ran in float32)."""
    image = sem_like[0].astype(np.float64)
    for diameter in (None, 48, 9):  # the image's own scale, shrunk, enlarged
        plain = segment(image, tiny_segmenter, tile=128, diameter=diameter).labels
        assert np.array_equal(segment(image * 1e300, tiny_segmenter, tile=128, diameter=diameter).labels, plain)


def test_rgb_input_equals_grey(tiny_segmenter, sem_like):
    image, _ = sem_like
    grey = segment(image, tiny_segmenter, tile=128).labels
    rgb = segment(np.stack([image] * 3, -1), tiny_segmenter, tile=128).labels
    assert np.array_equal(grey, rgb)


def test_info_bar_excluded(tiny_segmenter, sem_like):
    image, labels = sem_like
    res = segment(image, tiny_segmenter, tile=128)
    assert res.info_bar is not None and res.info_bar.start == labels.shape[0]
    assert res.labels[res.info_bar.start :].max() == 0
    forced = segment(image, tiny_segmenter, tile=128, info_bar=InfoBar(0, 10, "top"))
    assert forced.labels[:10].max() == 0 and forced.info_bar.side == "top"


@pytest.mark.parametrize("shape", [(8, 8), (13, 9), (37, 300), (300, 37)])
def test_small_and_odd_images(tiny_segmenter, rng, shape):
    image = rng.integers(0, 255, shape, dtype=np.uint8)
    assert segment(image, tiny_segmenter, tile=64).labels.shape == shape


def test_bad_inputs(tiny_segmenter):
    with pytest.raises(ValueError, match="too small"):
        segment(np.zeros((1, 1), np.uint8), tiny_segmenter)
    with pytest.raises(ValueError, match="2D"):
        segment(np.zeros((3, 32, 32, 5), np.uint8), tiny_segmenter)
    with pytest.raises(ValueError, match="empty"):
        segment(np.zeros((0, 32), np.uint8), tiny_segmenter)
    nan = np.zeros((32, 32), np.float32)
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment(nan, tiny_segmenter)
    with pytest.raises(ValueError, match="tile"):
        segment(np.zeros((32, 32), np.uint8), tiny_segmenter, tile=30)


def test_constant_image_gives_a_result(tiny_segmenter):
    res = segment(np.full((64, 64), 7, np.uint8), tiny_segmenter, tile=64)
    assert res.labels.shape == (64, 64)


def test_progress_and_cancel(tiny_segmenter, rng, monkeypatch):
    from napari_nanogan.segmentation import tiles

    monkeypatch.setattr(tiles, "WHOLE_IMAGE_PIXELS", 1000)  # tiles, not one pass, for this small image
    image = rng.integers(0, 255, (200, 200), dtype=np.uint8)
    seen = []
    one_pass = dict(tile=64, overlap=8, polarity_check=False)  # (the check would segment the noise again, inverted)
    segment(image, tiny_segmenter, progress=lambda d, t: seen.append((d, t)), **one_pass)
    from napari_nanogan.segmentation import segment_steps

    steps, records = segment_steps(image, tiny_segmenter, **one_pass), []
    with pytest.raises(StopIteration):
        while True:
            records.append(next(steps))
    assert [tuple(r) for r in records] == seen  # progress() gets every record
    tiles_ = [r for r in records if r.stage.startswith("segmenting")]
    assert tiles_[-1].done == tiles_[-1].total == len(tiles_) > 1
    assert records[0].stage == "choosing the model" and records[-1].stage == "separating touching particles"
    calls = []
    with pytest.raises(InterruptedError):
        segment(image, tiny_segmenter, tile=64, should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert len(calls) == 2


def test_shipped_model_is_tile_invariant():
    """Group norm with image-wide statistics (``image_statistics``).

    Before that fix, 256-px tiles vs one tile gave labels F1 0.91 on this image. What
    remains is the convolutions' zero padding at tile edges, which the overlap absorbs.
    """
    from conftest import shipped_model_available

    if not shipped_model_available():
        pytest.skip("shipped weights not installed")
    from napari_nanogan.data.procedural import sample_image
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation import load_segmenter

    seg = load_segmenter("default", device="cpu")
    image, _ = sample_image()
    image = np.tile(image[:712], (2, 2))  # 2.9 MP: above the one-pass size, so it is tiled
    whole = segment(image, seg, tile=2048, info_bar=None)
    default = segment(image, seg, info_bar=None)  # 512-px tiles, 128-px overlap
    small = segment(image, seg, tile=256, info_bar=None)
    assert summarize([(whole.labels, default.labels)])["f1"] > 0.99
    assert np.abs(whole.foreground.astype(int) - default.foreground).mean() < 0.1  # grey levels of 255
    assert summarize([(whole.labels, small.labels)])["f1"] > 0.98


def test_group_norm_uses_image_statistics_and_restores_the_network(monkeypatch):
    import torch
    from scipy import ndimage as ndi

    from napari_nanogan.config import SegmenterConfig
    from napari_nanogan.segmentation import Segmenter
    from napari_nanogan.segmentation.statistics import image_statistics
    from napari_nanogan.segmentation.tiles import probability_steps
    from napari_nanogan.models.attention_unet import AttentionUNet

    from napari_nanogan.segmentation import tiles

    monkeypatch.setattr(tiles, "WHOLE_IMAGE_PIXELS", 10_000)  # tile this small image
    torch.manual_seed(0)
    net = AttentionUNet(SegmenterConfig(base_channels=8, depth=3, norm="group"))
    seg = Segmenter.from_network(net, device="cpu")
    rng = np.random.default_rng(0)
    image = ndi.gaussian_filter(rng.normal(size=(200, 300)), 3)
    image[:, 150:] = image[:, 150:] * 3 + 2  # two halves with different statistics

    def probs(tile):
        steps = probability_steps(image, seg, tile=tile, overlap=40 if tile < 300 else 0)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value[0].astype(int)

    whole, tiled = probs(304), probs(160)
    # per-tile statistics make the tiles disagree with the whole (mean 12 grey levels here); image-wide ones do not
    inner = (slice(24, -24), slice(24, -24))
    assert np.abs(whole - tiled)[inner].mean() < 2.0
    # the network is itself again afterwards, also when a run is abandoned mid-way
    steps = probability_steps(image, seg, tile=96)
    next(steps)
    steps.close()
    assert not any("forward" in m.__dict__ for m in net.modules())
    x = torch.from_numpy(image[:96, :96].astype(np.float32))[None, None]
    with image_statistics(net, None), torch.inference_mode():
        a = net(x)
    with torch.inference_mode():
        b = net(x)
    assert torch.equal(a, b)


def test_small_images_run_in_one_pass_without_the_info_bar(tiny_segmenter, sem_like):
    """Up to 1 MP of specimen, the tile size does not matter and the bar does not enter the statistics."""
    image, _ = sem_like
    bar = InfoBar(start=176, stop=200, side="bottom")
    a = segment(image, tiny_segmenter, tile=64, info_bar=bar)
    b = segment(image, tiny_segmenter, tile=512, info_bar=bar)
    assert np.array_equal(a.foreground, b.foreground) and np.array_equal(a.labels, b.labels)
    specimen_only = segment(image[:176], tiny_segmenter, info_bar=None)
    assert np.array_equal(a.foreground[:176], specimen_only.foreground)
    assert a.foreground[176:].max() == 0


def test_resize_factor_shrinks_enlarges_small_particles_at_most_twice_and_rejects_nonsense():
    from napari_nanogan.config import MIN_RESIZE
    from napari_nanogan.segmentation.scale import resize_factor, within_pixel_budget

    assert resize_factor(None) == 1.0
    assert resize_factor(24.0, 24.0) == 1.0
    assert resize_factor(25.0, 24.0) == 1.0  # within 5 %: not worth a resize
    assert resize_factor(13.0, 24.0) == 1.0  # down to half the model's size: the image's own scale
    assert resize_factor(11.0, 24.0) == 2.0  # small particles: enlarged twice
    with pytest.warns(UserWarning, match="under 6 px: the image is enlarged at most 2 times"):
        assert resize_factor(4.0, 24.0) == 2.0  # and no more, said where the particles stay too small
    with pytest.warns(UserWarning, match="diameter of 0.001 px"):
        assert resize_factor(0.001, 24.0) == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resize_factor(6.0, 24.0) == 2.0  # 12 px when enlarged: what the model finds at its own scale
        assert resize_factor(4.0, 24.0, warn_small=False) == 2.0  # an estimate's: it may be undone
    assert resize_factor(48.0, 24.0) == pytest.approx(0.5)
    assert within_pixel_budget(2.0, (1000, 1000)) == 2.0
    with pytest.warns(UserWarning, match="enlarged 1.41 times instead"):
        assert within_pixel_budget(2.0, (4000, 8000)) == pytest.approx(2**0.5)
    assert within_pixel_budget(0.5, (10**5, 10**5)) == 0.5
    with pytest.warns(UserWarning, match="no more"):
        assert resize_factor(1000.0, 24.0) == MIN_RESIZE
    for bad in (0, -3, float("nan"), float("inf"), "big"):
        with pytest.raises(ValueError, match="diameter"):
            resize_factor(bad)


def test_scale_postprocess_scales_distances_and_areas():
    from napari_nanogan.config import PostprocessConfig
    from napari_nanogan.segmentation.scale import scale_postprocess

    cfg = PostprocessConfig(min_distance=6, smooth_sigma=2.0, min_area=16, min_seed_area=4)
    big = scale_postprocess(cfg, 3.0)
    assert (big.min_distance, big.smooth_sigma, big.min_area, big.min_seed_area) == (18, 6.0, 144, 36)
    assert big.fg_threshold == cfg.fg_threshold and big.seed_method == cfg.seed_method


def test_diameter_runs_the_network_on_a_smaller_image(tiny_segmenter, sem_like, network_input_shapes):
    image, _ = sem_like
    seen = network_input_shapes
    res = segment(image, tiny_segmenter, info_bar=None, diameter=2 * tiny_segmenter.diameter_px)
    assert seen[0] == (round(image.shape[0] / 2), round(image.shape[1] / 2))
    assert res.labels.shape == res.foreground.shape == image.shape
    with pytest.raises(ValueError, match="too small"):
        segment(image[:40, :40], tiny_segmenter, info_bar=None, diameter=8 * tiny_segmenter.diameter_px)


def test_diameter_stops_large_particles_being_split():
    """Particles 4x the training scale: at the image's own scale the network cuts them
    into many pieces; with their diameter given, they come out whole."""
    from conftest import shipped_model_available

    if not shipped_model_available():
        pytest.skip("shipped weights not installed")
    from napari_nanogan.data.procedural import sample_image
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation import load_segmenter

    seg = load_segmenter("default", device="cpu")
    image, labels = sample_image()
    big = np.kron(image[:192, :256], np.ones((4, 4), image.dtype))
    truth = np.kron(labels[:192, :256], np.ones((4, 4), labels.dtype))
    native = summarize([(truth, segment(big, seg, info_bar=None).labels)])
    sized = summarize([(truth, segment(big, seg, info_bar=None, diameter=4 * seg.diameter_px).labels)])
    # splitting shows as low precision (one particle, many predicted pieces)
    assert sized["precision"] > 0.9 and sized["precision"] > native["precision"] + 0.3, (native, sized)
    assert sized["f1"] > native["f1"] and sized["iou"] > 0.85, (native, sized)


def test_diameter_finds_small_particles_on_an_enlarged_image(tiny_segmenter, sem_like, network_input_shapes):
    image, _ = sem_like
    res = segment(image, tiny_segmenter, info_bar=None, diameter=tiny_segmenter.diameter_px / 3)
    assert network_input_shapes[0] == (2 * image.shape[0], 2 * image.shape[1])  # at most twice as large
    assert res.labels.shape == res.foreground.shape == image.shape


def test_diameter_lets_small_particles_be_found():
    """Particles a third of the training scale (8 px): at the image's own scale the network
    misses most of them; with their diameter given, the image is enlarged and they are found."""
    from conftest import shipped_model_available

    if not shipped_model_available():
        pytest.skip("shipped weights not installed")
    from skimage.transform import downscale_local_mean

    from napari_nanogan.data.procedural import sample_image
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation import load_segmenter

    seg = load_segmenter("default", device="cpu")
    image, labels = sample_image()
    h, w = labels.shape[0] // 3 * 3, labels.shape[1] // 3 * 3
    small = downscale_local_mean(image[:h, :w].astype(np.float32), (3, 3)).astype(image.dtype)
    truth = labels[:h:3, :w:3]
    native = summarize([(truth, segment(small, seg, info_bar=None).labels)])
    sized = summarize([(truth, segment(small, seg, info_bar=None, diameter=seg.diameter_px / 3).labels)])
    assert sized["recall"] > native["recall"] + 0.3 and sized["f1"] > 0.75, (native, sized)


def test_precision_follows_the_cpu_and_the_environment(monkeypatch, tiny_checkpoint, sem_like):
    from napari_nanogan.models import runtime
    from napari_nanogan.segmentation import Segmenter, segment

    monkeypatch.delenv("NANOGAN_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "bf16_supported", lambda: True)
    assert runtime.inference_precision("cpu") == "bf16" and runtime.inference_precision("meta") == "fp32"
    monkeypatch.setattr(runtime, "bf16_supported", lambda: False)
    assert runtime.inference_precision("cpu") == "fp32"
    monkeypatch.setenv("NANOGAN_PRECISION", "bf16")
    seg = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")
    assert seg.precision == "bf16"
    fp32 = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")
    fp32.precision = "fp32"
    image, _ = sem_like
    a, b = segment(image, seg, info_bar=None), segment(image, fp32, info_bar=None)
    assert np.abs(a.foreground.astype(int) - b.foreground.astype(int)).mean() < 2  # grey levels of 255
    monkeypatch.setenv("NANOGAN_PRECISION", "fp16")
    with pytest.raises(ValueError, match="NANOGAN_PRECISION"):
        runtime.inference_precision("cpu")
