"""Adversarial training of a texture network (``models.texture``) on real substrate or real particles.

Each step draws ``batch_size`` patches with enough of the texture's region in them (at
least ``min_fraction`` of their pixels; half for the substrate) from the annotated
images, computes their band-pass residual over their own
substrate weight ``w`` (``models.texture.band_pass``), and a texture of the same size
from the network, filtered with the same ``w``. A PatchGAN critic (spectral norm, LSGAN)
sees ``[residual, w]`` on both sides, so the particles' layout gives nothing away and
only the texture differs. The random draws of step ``t`` come from ``(seed, t)``, so a run
resumed from ``last.pt`` continues exactly as if it had not stopped.

Only real images are used: the generator is not involved, so the texture learns what
the real substrate (or particles) look like rather than what the generator's lack.
A conditional texture (``TextureConfig.cond_channels``) gets the region's mask and depth
(``models.texture.condition_maps``) over the whole drawn area, border included.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import numpy as np
import torch

from .. import __version__
from ..config import ModelKind, TextureConfig, TextureRegion, TextureTrainConfig
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.discriminator import PatchCritic
from ..models.runtime import default_device
from ..models.texture import SCALE, TextureNet, band_pass
from ..synthesis.texture import LearnedTexture, condition_maps, region_weight
from .cyclegan import lsgan
from .loop import Clock, TrainProgress, run_folder


#: Extra border (px) drawn around each training texture and cut away, so the network
#: learns the texture as it is inside a large image rather than at its zero-padded border.
_BORDER = 16


def _patches(images, weights, size: int, n: int, rng: np.random.Generator, min_fraction: float = 0.5, border: int = 0):
    """``n`` random patches [n, 1, size, size] of images and their region weights, with at least ``min_fraction``
    of region in them (or the best of 20 draws); with ``border``, also the weights around each patch
    [n, 1, size + 2 border, size + 2 border]."""
    real = np.empty((n, 1, size, size), np.float32)
    w = np.empty_like(real)
    outer = size + 2 * border
    wide = np.empty((n, 1, outer, outer), np.float32)
    for b in range(n):
        best = (-1.0, 0, 0, 0)
        for _ in range(20):
            i = rng.integers(len(images))
            y, x = rng.integers(images[i].shape[0] - outer + 1), rng.integers(images[i].shape[1] - outer + 1)
            fraction = weights[i][y + border : y + border + size, x + border : x + border + size].mean()
            if fraction > best[0]:
                best = (fraction, i, y, x)
            if fraction >= min_fraction:
                break
        if border:  # (without one, the draws stay those of the shipped substrate texture's training)
            _, i, y, x = best
        wide[b, 0] = weights[i][y : y + outer, x : x + outer]
        y, x = y + border, x + border
        real[b, 0], w[b, 0] = images[i][y : y + size, x : x + size], weights[i][y : y + size, x : x + size]
    if border:
        return torch.from_numpy(real), torch.from_numpy(w), torch.from_numpy(wide)
    return torch.from_numpy(real), torch.from_numpy(w)


def train_texture(
    images: list[np.ndarray],
    labels: list[np.ndarray],
    *,
    out_dir,
    config: TextureTrainConfig = TextureTrainConfig(),
    texture_config: TextureConfig = TextureConfig(),
    device=None,
    provenance: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[TrainProgress]:
    """Train (or resume from ``out_dir/last.pt``) the texture network; yields a record per step.

    ``images`` are grey images (0-255, specimen rows only) and ``labels`` their particle
    masks; ``texture_config.region`` says whether the substrate or the particles are
    learned. Writes ``last.pt`` every ``checkpoint_every`` steps, when stopped and at the end,
    and ``texture.pt`` at the end: the network, its amplitude fitted on the same images
    (:meth:`~napari_nanogan.synthesis.texture.LearnedTexture.fit_gain`) and its provenance. Resuming a finished run only rewrites ``texture.pt``.

    Raises
    ------
    ValueError
        For no images, mismatched shapes, images smaller than a patch, or images without
        enough substrate to draw patches from.
    """
    if not images or len(images) != len(labels):
        raise ValueError(f"need as many masks as images (and at least one), got {len(images)} and {len(labels)}")
    size = config.patch_size
    border = _BORDER if texture_config.cond_channels else 0
    for k, (im, lab) in enumerate(zip(images, labels)):
        if np.ndim(im) != 2 or np.shape(im) != np.shape(lab):
            raise ValueError(f"image {k}: a 2D grey image and a mask of the same shape are needed, "
                             f"got {np.shape(im)} and {np.shape(lab)}")
        if min(np.shape(im)) < size + 2 * border:
            raise ValueError(f"image {k} of shape {np.shape(im)} is smaller than the {size + 2 * border}-px patches")
    images = [np.asarray(im, np.float32) for im in images]
    weights = [region_weight(lab, texture_config) for lab in labels]
    region = texture_config.region
    if region == TextureRegion.SUBSTRATE and max(float(w.mean()) for w in weights) < config.min_fraction:
        raise ValueError("no image is at least half substrate: the texture has nothing to learn from")
    if region == TextureRegion.PARTICLES and max(float(w.mean()) for w in weights) < 0.02:
        raise ValueError("the images hold (almost) no particles: the texture has nothing to learn from")
    device = torch.device(device) if device is not None else default_device()
    out, last = run_folder(out_dir)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, the caller's random state untouched
        torch.manual_seed(config.seed)
        net, critic = TextureNet(texture_config).to(device), PatchCritic(2, 32, 3).to(device)
    opt_t = torch.optim.Adam(net.parameters(), config.lr, betas=(0.5, 0.99))
    opt_c = torch.optim.Adam(critic.parameters(), config.lr, betas=(0.5, 0.99))
    start = 0
    if last.exists():
        state = load_checkpoint(last, kind=ModelKind.TEXTURE_RUN)
        if TextureConfig.from_dict(state["texture_config"]) != texture_config:
            raise ValueError(f"{last} was trained with another texture configuration: "
                             f"{state['texture_config']}; use another --out")
        net.load_state_dict(state["state_dict"])
        critic.load_state_dict(state["critic"])
        opt_t.load_state_dict(state["opt_texture"])
        opt_c.load_state_dict(state["opt_critic"])
        start = int(state["step"])

    def save(step: int) -> str:
        save_checkpoint(last, {"kind": ModelKind.TEXTURE_RUN.value, "step": step,
                               "texture_config": texture_config.to_dict(), "train_config": config.to_dict(), "state_dict": net.state_dict(),
                               "critic": critic.state_dict(), "opt_texture": opt_t.state_dict(),
                               "opt_critic": opt_c.state_dict()})
        return str(last)

    sigma, clock, done = texture_config.sigma, Clock(config.steps, start), start
    for step in range(start + 1, config.steps + 1):
        if should_stop():
            yield clock.stopped(done, save(done))
            return
        rng = np.random.default_rng([config.seed, step])
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        drawn = _patches(images, weights, size, config.batch_size, rng, config.min_fraction, border)
        real, w = drawn[0].to(device), drawn[1].to(device)
        cond = None
        if border:
            cond = torch.from_numpy(np.stack([condition_maps(m[0]) for m in drawn[2].numpy()])).to(device)
        real_r = band_pass(real, w, sigma) / SCALE
        tex = net.sample(config.batch_size, size + 2 * _BORDER, size + 2 * _BORDER, g, cond)
        fake_r = band_pass(tex[..., _BORDER : _BORDER + size, _BORDER : _BORDER + size], w, sigma)
        real_in, fake_in = torch.cat([real_r, w], 1), torch.cat([fake_r, w], 1)
        critic_loss = lsgan(critic(real_in), True) + lsgan(critic(fake_in.detach()), False)
        opt_c.zero_grad()
        critic_loss.backward()
        opt_c.step()
        adversarial = lsgan(critic(fake_in), True)
        opt_t.zero_grad()
        adversarial.backward()
        opt_t.step()
        done = step
        checkpoint = save(step) if step % config.checkpoint_every == 0 or step == config.steps else None
        losses = {"total": adversarial.item(), "critic": critic_loss.item(),
                  "real_sd_grey": real_r.std().item() * SCALE, "texture_sd_grey": fake_r.detach().std().item() * SCALE}
        if not all(np.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f"non-finite loss at step {step}: {losses}; last good checkpoint {last}")
        yield clock.record(step, losses, None, checkpoint)
    if done >= config.steps:
        texture = LearnedTexture(copy.deepcopy(net).cpu())
        gain = texture.fit_gain(images, labels)  # the texture's amplitude, matched to the real residual's spread
        save_checkpoint(out / "texture.pt", {
            "kind": (ModelKind.SUBSTRATE_TEXTURE if region == TextureRegion.SUBSTRATE
                     else ModelKind.PARTICLE_TEXTURE).value, **texture.to_dict(),
            "provenance": {**(provenance or {}), "steps": config.steps, "train_config": config.to_dict(),
                           "gain_fitted_on": f"{len(images)} training images", "gain": gain,
                           **({"contrast": texture.contrast} if texture.contrast is not None else {}),
                           "package_version": __version__}})
