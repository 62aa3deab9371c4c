"""Cycle-consistent GAN training of the Style U-Net generator with the segmenter.

Networks, named by direction: ``mask_to_image`` (Style U-Net), ``image_to_mask``
(the Attention U-Net segmenter), ``image_critic`` and ``mask_critic`` (PatchGANs),
and ``style_encoder`` (image -> style for reconstructions). Masks are the soft
two-channel maps the segmenter predicts (foreground, interior): no argmax anywhere,
so the cycle losses send gradients through both networks.

One step, in the pytorch-CycleGAN order: forward; generator/segmenter step with the
critics frozen; critic step on detached fakes. Loss terms and their weights
(:class:`GanLossWeights`) and why:

- ``adv_image`` 1, ``adv_mask`` 0.5: least-squares GAN on DiffAugment-ed critic inputs
  (both sides alike), since a few annotated images would let a critic memorise.
- ``cycle_mask`` 5: mask -> image -> mask, BCE + Dice against the input mask; keeps
  synthetic images faithful to their mask (the property the product sells).
- ``cycle_image`` 2: image -> mask -> image with the image's own style, L1 on 4x
  average-pooled images + (1 - SSIM) on 2x pooled ones: structure and contrast
  must come back; fine texture is left to the critic (full-resolution L1 would
  reward the blurry mean and teach the generator to ignore its noise).
- ``supervised_mask`` 5: paired images through the segmenter, BCE + Dice. The segmenter
  sees its own batch here, drawn with the segmenter's full augmentation (contrast,
  gamma, noise, blur, scale; ``segmenter_augment``) and optionally contact-zone
  weighting (``contact_weight``), as when it trains alone: the critics must see real
  images as they are, but a segmenter trained only on those learns less.
- ``supervised_image`` 2: paired masks with the paired image's style, same pooled
  L1 + SSIM as the image cycle.
- ``adv_texture`` 0 (off by default): a third, small critic that sees only the
  high-pass residual of real and synthetic images (image minus its Gaussian blur,
  σ 1 px), so its whole signal is the fine texture (substrate speckle, detector
  noise) the other losses leave to the image critic and that critic under-weights.
- ``adv_substrate`` 0 (off by default): a fourth critic that sees the images with
  their particles (the mask dilated by 3 px) blacked out, real paired images with
  their own masks and synthetic ones with theirs, so its whole signal is the substrate:
  90 % of the pixels, and the part that costs the shipped generator most FID
  (``bench/synthesis_parts.py``: real substrate + synthetic particles 68.8 against 118.3).
- ``adv_particles`` 0 (off by default): a fifth critic that sees real paired images
  against the same images with their particles (the mask dilated by 1 px, the margin
  the shipped substrate texture leaves) redrawn by the generator from the paired mask
  in the image's own style. Real and fake share every substrate pixel, so its whole
  signal is the particles: with the learned substrate texture laid over the substrate,
  the part of the FID gap left in session 16 (real substrate + synthetic particles: 68.8,
  40 points above the floor; docs/benchmarks.md). Off by default: its GPU runs did not
  beat the generator they continued (session 17).
- ``diversity`` 1: mode-seeking term (Mao et al. 2019): two latents for one mask
  must give different images, so style and noise cannot be ignored.

An exponential moving average of the generator is what is sampled and shipped. Its
decay warms up, ``min(0.999, (1 + t) / (10 + t))`` at step t, so the average covers
roughly the last tenth of training. (Without the warm-up, a constant 0.999 keeps
0.999^t of the random initialisation: 61 % after 500 steps, 9 % after 2,400.)
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..config import GeneratorConfig, SegmenterConfig, _from_dict
from ..data.augment import AugmentConfig, sample_batch
from ..data.datasets import Sample
from ..data.targets import SEED_DEPTH
from ..inference import default_device
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.discriminator import PatchCritic, diff_augment
from ..models.style_unet import StyleEncoder, StyleUNet
from .losses import segmentation_loss
from .progress import TrainProgress
from .segmenter import evaluate, machine_description

#: Real images are shown to the critics as they are: geometric augmentation only.
GAN_AUGMENT = AugmentConfig(contrast=(1.0, 1.0), brightness=0.0, gamma=(1.0, 1.0), blur_prob=0.0, noise_prob=0.0)


@dataclass(frozen=True)
class GanLossWeights:
    adv_image: float = 1.0
    adv_mask: float = 0.5
    cycle_mask: float = 5.0
    cycle_image: float = 2.0
    supervised_mask: float = 5.0
    supervised_image: float = 2.0
    diversity: float = 1.0
    adv_texture: float = 0.0
    adv_substrate: float = 0.0
    adv_particles: float = 0.0


@dataclass(frozen=True)
class GanTrainConfig:
    """Cycle-GAN schedule.

    ``segmenter_augment``, ``contact_weight`` and ``segmenter_patch_size`` (default:
    ``patch_size``) shape the segmenter's supervised batch (see the module docstring);
    ``val_every`` steps between validations of the segmenter when validation images are
    given (``segmenter_best.pt`` keeps the best). ``critic_channels`` is the first
    layer's width of the image, substrate and particle critics (doubling per layer).
    The first ``critic_warmup`` steps train the critics alone against the networks as
    they are (a run continued from trained weights starts with fresh critics, and a
    fresh critic needs on the order of 1,500 steps of batch 8 to tell the shipped generator's images from
    real ones: ``bench/critic_probe.py``; until then its gradient is noise).
    """

    steps: int = 2000
    batch_size: int = 4
    patch_size: int = 128
    lr_generator: float = 2e-4
    lr_segmenter: float = 2e-4
    lr_critic: float = 2e-4
    ema_decay: float = 0.999
    checkpoint_every: int = 100
    seed: int = 0
    weights: GanLossWeights = field(default_factory=GanLossWeights)
    segmenter_augment: bool = True
    contact_weight: float = 0.0
    val_every: int = 500
    segmenter_patch_size: int | None = None
    critic_channels: int = 32
    critic_warmup: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GanTrainConfig":
        data = dict(data)
        weights = GanLossWeights(**data.pop("weights", {}))
        return _from_dict(cls, dict(data, weights=weights))


def to_gan(x01: torch.Tensor) -> torch.Tensor:
    """Normalised image (0 = dark, 1 = bright percentile) -> generator range [-1, 1]."""
    return x01.clamp(0, 1) * 2 - 1


def to_segmenter(xg: torch.Tensor) -> torch.Tensor:
    return (xg + 1) / 2


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean structural similarity of images in [-1, 1] (uniform window)."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    pad = window // 2
    mu_a = F.avg_pool2d(a, window, 1, pad, count_include_pad=False)
    mu_b = F.avg_pool2d(b, window, 1, pad, count_include_pad=False)
    var_a = F.avg_pool2d(a * a, window, 1, pad, count_include_pad=False) - mu_a**2
    var_b = F.avg_pool2d(b * b, window, 1, pad, count_include_pad=False) - mu_b**2
    cov = F.avg_pool2d(a * b, window, 1, pad, count_include_pad=False) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean()


def structure_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 of 4x pooled images + (1 - SSIM) of 2x pooled images."""
    return F.l1_loss(F.avg_pool2d(fake, 4), F.avg_pool2d(real, 4)) + (1 - ssim(F.avg_pool2d(fake, 2), F.avg_pool2d(real, 2)))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up: small at first, ``decay`` after about 10 / (1 - decay) steps."""
    return min(decay, (1 + step) / (10 + step))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] per channel (radius ``round(3 * sigma)``, reflect padding; differentiable)."""
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    blurred = F.pad(x, (radius,) * 4, mode="reflect")
    blurred = F.conv2d(blurred, k.view(1, 1, 1, -1).expand(x.shape[1], 1, 1, -1), groups=x.shape[1])
    return F.conv2d(blurred, k.view(1, 1, -1, 1).expand(x.shape[1], 1, -1, 1), groups=x.shape[1])


def high_pass(x: torch.Tensor, sigma: float = 1.0, gain: float = 8.0) -> torch.Tensor:
    """``gain * (x - gaussian_blur(x, sigma))``: an image's fine texture, scaled up from a few grey levels."""
    return gain * (x - gaussian_blur(x, sigma))


def dilated(foreground: torch.Tensor, margin: int) -> torch.Tensor:
    """The soft ``foreground`` [N, 1, H, W] grown by ``margin`` px (a max filter), within [0, 1]."""
    return F.max_pool2d(foreground, 2 * margin + 1, stride=1, padding=margin).clamp(0, 1)


def substrate_only(x: torch.Tensor, foreground: torch.Tensor, margin: int = 3) -> torch.Tensor:
    """``x`` (generator range [-1, 1]) with its particles, the soft ``foreground`` [N, 1, H, W]
    dilated by ``margin`` px, set to black: what the substrate critic sees."""
    covered = dilated(foreground, margin)
    return x * (1 - covered) - covered


def particles_into(x: torch.Tensor, drawn: torch.Tensor, foreground: torch.Tensor, margin: int = 1) -> torch.Tensor:
    """Real images ``x`` with their particles (the soft ``foreground`` dilated by ``margin`` px)
    replaced by ``drawn``: what the particle critic sees as fake."""
    covered = dilated(foreground, margin)
    return x * (1 - covered) + drawn * covered


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    return ((scores - (1.0 if real else 0.0)) ** 2).mean()


class CycleGAN(torch.nn.Module):
    """The networks trained together (the texture and substrate critics learn only when their loss weights are > 0)."""

    def __init__(self, generator_config: GeneratorConfig, segmenter_config: SegmenterConfig,
                 critic_channels: int = 32):
        super().__init__()
        self.mask_to_image = StyleUNet(generator_config)
        self.image_to_mask = AttentionUNet(segmenter_config)
        self.style_encoder = StyleEncoder(generator_config.style_dim)
        self.image_critic = PatchCritic(1, base_channels=critic_channels)
        self.mask_critic = PatchCritic(generator_config.in_channels)
        self.texture_critic = PatchCritic(1, base_channels=32, layers=2)  # used when weights.adv_texture > 0
        self.substrate_critic = PatchCritic(1, base_channels=critic_channels)  # used when weights.adv_substrate > 0
        self.particle_critic = PatchCritic(1, base_channels=critic_channels)  # used when weights.adv_particles > 0

    #: Added after the first runs: a checkpoint without them resumes with them freshly initialised.
    optional_prefixes = ("texture_critic.", "substrate_critic.", "particle_critic.")


def train_cyclegan(
    paired: list[Sample],
    *,
    out_dir: str | Path,
    config: GanTrainConfig = GanTrainConfig(),
    generator_config: GeneratorConfig = GeneratorConfig(),
    segmenter_config: SegmenterConfig = SegmenterConfig(),
    unpaired_images: list[Sample] | None = None,
    unpaired_masks: list[Sample] | None = None,
    init_segmenter: str | Path | None = None,
    init_generator: str | Path | None = None,
    invert_init_generator: bool = False,
    val: list[Sample] | None = None,
    provenance: dict | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    device: torch.device | str | None = None,
) -> Iterator[TrainProgress]:
    """Train (or resume) the cycle GAN; yields a :class:`TrainProgress` per step.

    ``paired`` samples have images and labels; ``unpaired_images`` are used only for
    the image cycle and the mask critic, ``unpaired_masks`` only for the mask cycle
    and the image critic. ``out_dir`` receives ``last.pt`` (everything, for resume),
    ``generator.pt`` (EMA generator) and ``segmenter.pt``; with ``val`` samples, the
    segmenter is scored on them every ``config.val_every`` steps (as in
    :func:`~napari_nanogan.training.segmenter.train_segmenter`) and ``segmenter_best.pt``
    keeps the best-scoring one. ``invert_init_generator`` starts from ``init_generator``'s
    negative (:meth:`~napari_nanogan.models.style_unet.StyleUNet.invert_output_`): from an
    SEM generator, a warm start for bright-field TEM.
    """
    if not paired:
        raise ValueError("the cycle GAN needs at least one annotated image")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    nets = CycleGAN(generator_config, segmenter_config, critic_channels=config.critic_channels)
    if init_segmenter is not None:
        nets.image_to_mask.load_state_dict(load_checkpoint(init_segmenter, kind="segmenter")["state_dict"])
    if init_generator is not None:
        nets.mask_to_image.load_state_dict(load_checkpoint(init_generator, kind="generator")["state_dict"])
        if invert_init_generator:
            nets.mask_to_image.invert_output_()
    elif invert_init_generator:
        raise ValueError("invert_init_generator needs an init_generator")
    ema = copy.deepcopy(nets.mask_to_image).eval().requires_grad_(False)
    # on the device before the optimizers load their state, which follows the parameters' device
    nets.to(device)
    opt_g = torch.optim.Adam(list(nets.mask_to_image.parameters()) + list(nets.style_encoder.parameters()),
                             lr=config.lr_generator, betas=(0.5, 0.999))
    opt_s = torch.optim.Adam(nets.image_to_mask.parameters(), lr=config.lr_segmenter, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(nets.image_critic.parameters()) + list(nets.mask_critic.parameters()),
                             lr=config.lr_critic, betas=(0.5, 0.999))
    opt_t = torch.optim.Adam(nets.texture_critic.parameters(), lr=config.lr_critic, betas=(0.5, 0.999))
    opt_b = torch.optim.Adam(nets.substrate_critic.parameters(), lr=config.lr_critic, betas=(0.5, 0.999))
    opt_p = torch.optim.Adam(nets.particle_critic.parameters(), lr=config.lr_critic, betas=(0.5, 0.999))
    start, best, history = 0, -1.0, []
    last_path = out_dir / "last.pt"
    if last_path.exists():
        state = load_checkpoint(last_path, kind="cyclegan")
        missing, unexpected = nets.load_state_dict(state["state_dict"], strict=False)
        missing = [k for k in missing if not k.startswith(CycleGAN.optional_prefixes)]
        if missing or unexpected:
            raise RuntimeError(f"{last_path}: not this cycle GAN (missing {missing[:3]}, unexpected {unexpected[:3]})")
        if state["training"].get("ema_warmup"):
            ema.load_state_dict(state["ema"])
        else:
            # written before the EMA had a warm-up: its average still holds a share of the
            # random initialisation (0.999^step), so it restarts from the trained weights
            ema.load_state_dict(nets.mask_to_image.state_dict())
            warnings.warn(f"{last_path}: its generator average predates the EMA warm-up; "
                          "restarting the average from the trained generator weights", stacklevel=2)
        for opt, key in ((opt_g, "opt_g"), (opt_s, "opt_s"), (opt_d, "opt_d"), (opt_t, "opt_t"), (opt_b, "opt_b"),
                         (opt_p, "opt_p")):
            if key in state["training"]:  # opt_t, opt_b, opt_p: absent from runs before those critics
                opt.load_state_dict(state["training"][key])
        start = state["training"]["step"]
        best = state["training"].get("best_score", -1.0)
        history = state["training"].get("history", [])
    ema.to(device)
    w = config.weights
    provenance = dict(provenance or {}, package_version=__version__, machine=machine_description(),
                      train_config=config.to_dict())
    for sample in paired + (unpaired_masks or []):
        # the generator's input maps are defined with the shipped seed depth (synthesis.mask_maps);
        # a segmenter run may have left other targets on the same samples
        sample.use_seed_depth(SEED_DEPTH)
    image_pool = {"paired": paired, **({"images": unpaired_images} if unpaired_images else {})}
    mask_pool = {"paired": paired, **({"masks": unpaired_masks} if unpaired_masks else {})}

    def sd(module: torch.nn.Module) -> dict:
        return {k: v.detach().cpu() for k, v in module.state_dict().items()}

    def save(step: int):
        prov = dict(provenance, step=step)
        save_checkpoint(last_path, {
            "kind": "cyclegan", "state_dict": sd(nets), "ema": sd(ema), "provenance": prov,
            "generator_config": generator_config.to_dict(), "segmenter_config": segmenter_config.to_dict(),
            "training": {"step": step, "ema_warmup": True, "opt_g": opt_g.state_dict(), "opt_s": opt_s.state_dict(),
                         "opt_d": opt_d.state_dict(), "opt_t": opt_t.state_dict(), "opt_b": opt_b.state_dict(),
                         "opt_p": opt_p.state_dict(), "best_score": best,
                         "history": history},
        })
        save_checkpoint(out_dir / "generator.pt", {"kind": "generator", "config": generator_config.to_dict(),
                                                   "state_dict": sd(ema), "provenance": prov})
        save_checkpoint(out_dir / "segmenter.pt", {"kind": "segmenter", "config": segmenter_config.to_dict(),
                                                   "state_dict": sd(nets.image_to_mask), "provenance": prov})

    t0 = time.perf_counter()
    for step in range(start, config.steps):
        if should_stop():
            save(step)
            yield TrainProgress(step, config.steps, elapsed=time.perf_counter() - t0,
                                seconds_per_step=(time.perf_counter() - t0) / max(step - start, 1),
                                checkpoint=str(last_path), stopped=True)
            return
        rng = np.random.default_rng([config.seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        b, p = config.batch_size, config.patch_size
        x01, m = sample_batch({"paired": paired}, b, p, rng, GAN_AUGMENT)
        xu01, _ = sample_batch(image_pool, b, p, rng, GAN_AUGMENT)
        _, mu = sample_batch(mask_pool, b, p, rng, GAN_AUGMENT)
        x, m, xu, mu = to_gan(x01).to(device), m.to(device), to_gan(xu01).to(device), mu.to(device)
        xs, ms, weight = to_segmenter(x), m, None  # the segmenter's supervised batch, in its own input range
        if config.segmenter_augment or config.contact_weight > 0 or config.segmenter_patch_size not in (None, p):
            augment = AugmentConfig() if config.segmenter_augment else GAN_AUGMENT
            xs, ms = sample_batch({"paired": paired}, b, config.segmenter_patch_size or p, rng, augment,
                                  with_contact=config.contact_weight > 0)
            if config.contact_weight > 0:
                ms, weight = ms[:, :2], (1.0 + config.contact_weight * ms[:, 2:]).to(device)
            xs, ms = xs.to(device), ms.to(device)
        nets.train()

        # ---- generator + segmenter step (critics frozen); during the critics' warm-up, forward only
        warming = step < config.critic_warmup
        if warming:  # the fakes as the current networks draw them, nothing learns but the critics
            for net in (nets.mask_to_image, nets.image_to_mask, nets.style_encoder):
                net.eval()
        with torch.set_grad_enabled(not warming):
            nets.image_critic.requires_grad_(False)
            nets.mask_critic.requires_grad_(False)
            nets.texture_critic.requires_grad_(False)
            nets.substrate_critic.requires_grad_(False)
            nets.particle_critic.requires_grad_(False)
            z1 = nets.mask_to_image.sample_latents(b, generator=gen).to(device)
            z2 = nets.mask_to_image.sample_latents(b, generator=gen).to(device)
            noise = [t.to(device) for t in nets.mask_to_image.sample_noise(b, (p, p), generator=gen)]
            noise2 = [t.to(device) for t in nets.mask_to_image.sample_noise(b, (p, p), generator=gen)]
            fake = nets.mask_to_image(mu, z1, noise)  # mask -> image
            fake2 = nets.mask_to_image(mu, z2, noise2)
            cyc_m = segmentation_loss(nets.image_to_mask(to_segmenter(fake)), mu)["total"]  # -> mask
            pred_u = torch.sigmoid(nets.image_to_mask(to_segmenter(xu)))  # image -> soft mask
            rec_u = nets.mask_to_image(pred_u, w=nets.style_encoder(xu), noise=noise)  # -> image
            cyc_x = structure_loss(rec_u, xu)
            sup_m = segmentation_loss(nets.image_to_mask(xs), ms, weight)["total"]
            drawn = nets.mask_to_image(m, w=nets.style_encoder(x), noise=noise)  # the paired mask, the image's style
            sup_x = structure_loss(drawn, x)
            adv_x = lsgan(nets.image_critic(diff_augment(fake, generator=gen)), True)
            adv_m = lsgan(nets.mask_critic(diff_augment(pred_u * 2 - 1, generator=gen, colour=False)), True)
            diversity = 1.0 / ((fake - fake2).abs().mean() / (z1 - z2).abs().mean() + 1e-3) * 1e-2
            loss_g = (w.adv_image * adv_x + w.adv_mask * adv_m + w.cycle_mask * cyc_m + w.cycle_image * cyc_x
                      + w.supervised_mask * sup_m + w.supervised_image * sup_x + w.diversity * diversity)
            adv_t = d_t = None
            if w.adv_texture > 0:
                adv_t = lsgan(nets.texture_critic(high_pass(diff_augment(fake, generator=gen, colour=False))), True)
                loss_g = loss_g + w.adv_texture * adv_t
            adv_b = d_b = None
            if w.adv_substrate > 0:
                adv_b = lsgan(nets.substrate_critic(diff_augment(substrate_only(fake, mu[:, :1]), generator=gen)), True)
                loss_g = loss_g + w.adv_substrate * adv_b
            adv_p = d_p = None
            if w.adv_particles > 0:
                adv_p = lsgan(nets.particle_critic(diff_augment(particles_into(x, drawn, m[:, :1]), generator=gen)), True)
                loss_g = loss_g + w.adv_particles * adv_p
        if not warming:
            opt_g.zero_grad(set_to_none=True)
            opt_s.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            opt_s.step()

        # ---- critic step on detached fakes
        nets.image_critic.requires_grad_(True)
        nets.mask_critic.requires_grad_(True)
        d_x = 0.5 * (lsgan(nets.image_critic(diff_augment(xu, generator=gen)), True)
                     + lsgan(nets.image_critic(diff_augment(fake.detach(), generator=gen)), False))
        d_m = 0.5 * (lsgan(nets.mask_critic(diff_augment(mu * 2 - 1, generator=gen, colour=False)), True)
                     + lsgan(nets.mask_critic(diff_augment(pred_u.detach() * 2 - 1, generator=gen, colour=False)), False))
        opt_d.zero_grad(set_to_none=True)
        (d_x + d_m).backward()
        opt_d.step()
        if w.adv_texture > 0:
            nets.texture_critic.requires_grad_(True)
            d_t = 0.5 * (lsgan(nets.texture_critic(high_pass(diff_augment(xu, generator=gen, colour=False))), True)
                         + lsgan(nets.texture_critic(high_pass(diff_augment(fake.detach(), generator=gen, colour=False))),
                                 False))
            opt_t.zero_grad(set_to_none=True)
            d_t.backward()
            opt_t.step()
        if w.adv_substrate > 0:
            nets.substrate_critic.requires_grad_(True)
            d_b = 0.5 * (lsgan(nets.substrate_critic(diff_augment(substrate_only(x, m[:, :1]), generator=gen)), True)
                         + lsgan(nets.substrate_critic(diff_augment(substrate_only(fake.detach(), mu[:, :1]),
                                                                    generator=gen)), False))
            opt_b.zero_grad(set_to_none=True)
            d_b.backward()
            opt_b.step()
        if w.adv_particles > 0:
            nets.particle_critic.requires_grad_(True)
            d_p = 0.5 * (lsgan(nets.particle_critic(diff_augment(x, generator=gen)), True)
                         + lsgan(nets.particle_critic(diff_augment(particles_into(x, drawn.detach(), m[:, :1]),
                                                                   generator=gen)), False))
            opt_p.zero_grad(set_to_none=True)
            d_p.backward()
            opt_p.step()

        with torch.no_grad():  # (during the warm-up the generator does not change, nor does its average)
            for pe, pg in zip(ema.parameters(), nets.mask_to_image.parameters()):
                pe.lerp_(pg, 1 - ema_decay_at(step, config.ema_decay))
        done = step + 1
        losses = {"adv_image": adv_x, "adv_mask": adv_m, "cycle_mask": cyc_m, "cycle_image": cyc_x,
                  "supervised_mask": sup_m, "supervised_image": sup_x, "diversity": diversity,
                  "critic_image": d_x, "critic_mask": d_m, "total": loss_g}
        if adv_t is not None:
            losses.update(adv_texture=adv_t, critic_texture=d_t)
        if adv_b is not None:
            losses.update(adv_substrate=adv_b, critic_substrate=d_b)
        if adv_p is not None:
            losses.update(adv_particles=adv_p, critic_particles=d_p)
        if warming:  # nothing but the critics learned: their losses only
            losses = {k: v for k, v in losses.items() if k.startswith("critic_")}
        record = {k: float(v.detach()) for k, v in losses.items()}
        checkpoint, validation = None, None
        if val and config.val_every > 0 and (done % config.val_every == 0 or done == config.steps):
            nets.image_to_mask.eval()
            validation = evaluate(nets.image_to_mask, val)
            history.append({"step": done, **validation})
            if validation["score"] > best:
                best = validation["score"]
                best_path = out_dir / "segmenter_best.pt"
                save_checkpoint(best_path, {"kind": "segmenter", "config": segmenter_config.to_dict(),
                                            "state_dict": sd(nets.image_to_mask),
                                            "provenance": dict(provenance, step=done, validation=validation)})
                checkpoint = str(best_path)
        if done % config.checkpoint_every == 0 or done == config.steps:
            save(done)
            checkpoint = checkpoint or str(last_path)
        elapsed = time.perf_counter() - t0
        yield TrainProgress(done, config.steps, record, elapsed, elapsed / (done - start), validation, checkpoint)
