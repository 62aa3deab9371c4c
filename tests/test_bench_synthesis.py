"""The post-processings bench/synthesis_quality.py measures FID/KID for."""

import importlib.util
import sys

import numpy as np
import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("synthesis_quality", REPO / "bench" / "synthesis_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def smooth_image():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    return np.clip(100 + 40 * ndi.gaussian_filter(rng.normal(size=(256, 256)), 6) * 6, 0, 255)


def test_noise_model_reaches_the_target_level(bench, smooth_image):
    target = 6.0 * bench.RESIDUAL_GAIN  # residual level of white noise of sd 6
    noisy = bench.add_noise(smooth_image, target, seed=1)
    assert bench.noise_level(smooth_image) < 0.2 * target
    assert bench.noise_level(noisy) == pytest.approx(target, rel=0.1)
    # already noisier than the target: nothing is added
    np.testing.assert_array_equal(bench.add_noise(noisy, 0.5 * target, seed=2), noisy)


def test_blur_and_sharpen_move_the_noise_level_opposite_ways(bench, smooth_image):
    noisy = bench.add_noise(smooth_image, 5.0, seed=3)
    train_values = np.linspace(0, 255, 1000)
    blur, sharp, hist = (bench.post_process(p, [noisy], train_values, 5.0)[0] for p in ("blur", "sharpen", "hist"))
    level = bench.noise_level(noisy)
    assert bench.noise_level(blur) < 0.7 * level < level < bench.noise_level(sharp)
    # histogram matching to a uniform 0-255 reference spreads the grey levels over it
    assert np.percentile(hist, 10) == pytest.approx(25.5, abs=3) and np.percentile(hist, 90) == pytest.approx(229.5, abs=3)
    with pytest.raises(SystemExit, match="unknown"):
        bench.post_process("magic", [noisy], train_values, 5.0)
