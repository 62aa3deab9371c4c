from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NANOGAN_SHARED", REPO.parent / "shared"))
# exact comparisons (tilings, paths) assume fp32; tests/test_inference.py checks the bf16 path on its own
os.environ.setdefault("NANOGAN_PRECISION", "fp32")
DATA = SHARED / "data"

requires_shared = pytest.mark.skipif(
    not (DATA / "bam_tio2_sem").is_dir(),
    reason=f"real EM data not found at {DATA} (licensed data, kept beside the repository in ../shared)",
)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small, randomly initialised segmenter checkpoint (plain data)."""
    import torch

    from napari_nanogan.config import SegmenterConfig
    from napari_nanogan.models.attention_unet import AttentionUNet
    from napari_nanogan.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    config = SegmenterConfig(base_channels=4, depth=3)
    net = AttentionUNet(config)
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    save_checkpoint(path, {"kind": "segmenter", "config": config.to_dict(), "state_dict": net.state_dict(), "provenance": {"test": True}})
    return path


SIZED_DIAMETER = 72.0


def constant_size_model(diameter: float):
    """A size model that estimates ``diameter`` px whatever the image."""
    from napari_nanogan.segmentation.sizing import FEATURES_PER_SCALE, SIZE_SCALES, SizeModel

    n = len(SIZE_SCALES) * FEATURES_PER_SCALE
    return SizeModel(np.zeros(n), np.ones(n), np.zeros((1, n)), np.log([diameter]), 1, {})


@pytest.fixture(scope="session")
def sized_tiny_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny segmenter with a size model that always estimates ``SIZED_DIAMETER`` px."""
    from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(tiny_checkpoint, kind="segmenter")
    data.pop("format_version")
    path = tmp_path_factory.mktemp("models") / "sized.pt"
    save_checkpoint(path, {**data, "size_model": constant_size_model(SIZED_DIAMETER).to_dict()})
    return path


@pytest.fixture(scope="session")
def tiny_segmenter(tiny_checkpoint):
    from napari_nanogan.segmentation import Segmenter

    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def sem_like():
    """A small procedural SEM image (with info bar) and its labels."""
    from napari_nanogan.data.procedural import particle_labels, render_sem

    labels = particle_labels((200, 240), n_particles=25, mean_diameter=18, seed=3)
    image = render_sem(labels, seed=4, info_bar_rows=24)
    return image, labels


def shipped_model_available() -> bool:
    from napari_nanogan.models.registry import SHIPPED_SEGMENTERS, shipped_path

    return shipped_path(SHIPPED_SEGMENTERS["default"]).is_file()


requires_shipped = pytest.mark.skipif(not shipped_model_available(), reason="shipped default weights not installed")


@pytest.fixture
def network_input_shapes(monkeypatch) -> list:
    """Shapes of the images ``segmentation.tiles.probability_steps`` runs the network on, in call order."""
    from napari_nanogan.segmentation import pipeline, polarity, sizing, tiles

    seen = []
    original = tiles.probability_steps

    def spy(image, *args, **kwargs):
        seen.append(image.shape)
        return (yield from original(image, *args, **kwargs))

    for module in (tiles, pipeline, polarity, sizing):
        monkeypatch.setattr(module, "probability_steps", spy)
    return seen


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_generator_checkpoint(tmp_path_factory) -> Path:
    """A small, randomly initialised Style U-Net generator checkpoint."""
    import torch

    from napari_nanogan.config import GeneratorConfig
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.models.style_unet import StyleUNet

    torch.manual_seed(0)
    config = GeneratorConfig(base_channels=8, depth=3, style_dim=16, mapping_layers=2)
    path = tmp_path_factory.mktemp("generators") / "tiny_generator.pt"
    save_checkpoint(path, {"kind": "generator", "config": config.to_dict(), "state_dict": StyleUNet(config).state_dict()})
    return path


@pytest.fixture
def wait_done(qtbot):
    """Wait until a widget has handled its worker's end (its ``_on_finished`` re-enables Run).

    Waiting on ``worker.finished`` itself races: the worker thread may emit it before the
    test connects to it (a fast job, or one cancelled at a yield), and the test then waits
    for a signal already gone. The widget connects before it starts the worker, so its
    own handler never misses the end.
    """

    def wait(widget, timeout: int = 60_000):
        runner = getattr(widget, "job", widget)  # panels on widgets._run.Job keep their worker there
        assert runner.worker is not None, "no worker was started"
        qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=timeout)

    return wait
