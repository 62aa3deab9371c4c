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


def test_blur_sharpen_and_noise_move_the_noise_level_as_meant(bench, smooth_image):
    from napari_nanogan.synthesis import add_sem_noise, noise_level

    noisy = add_sem_noise(smooth_image.astype(np.uint8), 5.0, seed=3).astype(np.float32)
    train_values = np.linspace(0, 255, 1000)
    blur, sharp, hist, chained = (bench.post_process(p, [noisy], train_values, 8.0, [0])[0]
                                  for p in ("blur", "sharpen", "hist", "blur+noise"))
    level = noise_level(noisy)
    assert noise_level(blur) < 0.7 * level < level < noise_level(sharp)
    assert noise_level(chained) == pytest.approx(8.0, rel=0.1)  # blurred, then noise up to the target
    # histogram matching to a uniform 0-255 reference spreads the grey levels over it
    assert np.percentile(hist, 10) == pytest.approx(25.5, abs=3) and np.percentile(hist, 90) == pytest.approx(229.5, abs=3)
    stronger = bench.post_process("blur:1.5", [noisy], train_values, 5.0, [0])[0]
    assert noise_level(stronger) < noise_level(blur)
    with pytest.raises(SystemExit, match="unknown"):
        bench.post_process("blur+magic", [noisy], train_values, 5.0, [0])


def test_synthesis_figure_from_procedural_masks(tmp_path, tiny_generator_checkpoint):
    from PIL import Image

    spec = importlib.util.spec_from_file_location("synthesis_figure", REPO / "bench" / "synthesis_figure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "fig.png"
    module.main(["--procedural", "--out", str(out), "--model", str(tiny_generator_checkpoint), "--rows", "2",
                 "--styles", "2"])
    width, height = Image.open(out).size
    assert width > height > 100  # 2 rows of (mask + 2 styles)
