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
  90 % of the pixels (``python -m bench.synthesis_parts`` measures what each part costs).
- ``adv_particles`` 0 (off by default): a fifth critic that sees real paired images
  against the same images with their particles (the mask dilated by 1 px, the margin
  the shipped substrate texture leaves) redrawn by the generator from the paired mask
  in the image's own style. Real and fake share every substrate pixel, so its whole
  signal is the particles (with the learned substrate texture, real substrate + synthetic
  particles measured FID 68.8 on BAM, 40 points above the real-vs-real floor). Off by
  default: runs with it did not beat the generator they continued.
- ``diversity`` 1: mode-seeking term (Mao et al. 2019): two latents for one mask
  must give different images, so style and noise cannot be ignored.

An exponential moving average of the generator is what is sampled and shipped. Its
decay warms up, ``min(0.999, (1 + t) / (10 + t))`` at step t, so the average covers
roughly the last tenth of training. (Without the warm-up, a constant 0.999 keeps
0.999^t of the random initialisation: 61 % after 500 steps, 9 % after 2,400.)
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..config import GEOMETRY_ONLY, AugmentConfig, GanTrainConfig, GeneratorConfig, ModelKind, SegmenterConfig
from ..data.augment import sample_batch
from ..data.datasets import Sample
from ..data.targets import SEED_DEPTH
from ..models.attention_unet import AttentionUNet
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.discriminator import PatchCritic, diff_augment
from ..models.runtime import default_device
from ..models.style_unet import StyleEncoder, StyleUNet
from .loop import Clock, TrainProgress, machine_description, run_folder
from .losses import segmentation_loss
from .segmenter import evaluate

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
    """The networks trained together (the optional critics learn only when their loss weights are > 0)."""

    def __init__(self, generator_config: GeneratorConfig, segmenter_config: SegmenterConfig,
                 critic_channels: int = 32):
        super().__init__()
        self.mask_to_image = StyleUNet(generator_config)
        self.image_to_mask = AttentionUNet(segmenter_config)
        self.style_encoder = StyleEncoder(generator_config.style_dim)
        self.image_critic = PatchCritic(1, base_channels=critic_channels)
        self.mask_critic = PatchCritic(generator_config.in_channels)
        self.texture_critic = PatchCritic(1, base_channels=32, layers=2)
        self.substrate_critic = PatchCritic(1, base_channels=critic_channels)
        self.particle_critic = PatchCritic(1, base_channels=critic_channels)

    #: Added after the first runs: a checkpoint without them resumes with them freshly initialised.
    optional_prefixes = ("texture_critic.", "substrate_critic.", "particle_critic.")


@dataclass
class Views:
    """One step's tensors, in the generator's range [-1, 1] (masks: soft [N, 2, H, W] maps)."""

    x: torch.Tensor  # paired real images
    m: torch.Tensor  # their masks
    xu: torch.Tensor  # real images (paired or not)
    mu: torch.Tensor  # masks (paired or not)
    fake: torch.Tensor  # mu -> image
    pred_u: torch.Tensor  # xu -> soft mask
    drawn: torch.Tensor  # m drawn in x's style
    gen: torch.Generator  # the augmentations' random draws


@dataclass(frozen=True)
class Critic:
    """A critic of the table: its network, its loss weight, and what it sees as real and as fake."""

    name: str  # the network is ``CycleGAN.<name>_critic``, the loss ``adv_<name>`` / ``critic_<name>``
    weight: str  # a field of GanLossWeights
    real: Callable[[Views], torch.Tensor]
    fake: Callable[[Views, Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]  # (views, detach or identity)
    optional: bool = True  # optional critics run only with a weight > 0


def _augment(v: Views, x: torch.Tensor, colour: bool = True) -> torch.Tensor:
    return diff_augment(x, generator=v.gen, colour=colour)


#: In this order: the generator's adversarial terms, then the critics' steps, draw their augmentations.
CRITICS = (
    Critic("image", "adv_image", lambda v: _augment(v, v.xu), lambda v, d: _augment(v, d(v.fake)), optional=False),
    Critic("mask", "adv_mask", lambda v: _augment(v, v.mu * 2 - 1, colour=False),
           lambda v, d: _augment(v, d(v.pred_u) * 2 - 1, colour=False), optional=False),
    Critic("texture", "adv_texture", lambda v: high_pass(_augment(v, v.xu, colour=False)),
           lambda v, d: high_pass(_augment(v, d(v.fake), colour=False))),
    Critic("substrate", "adv_substrate", lambda v: _augment(v, substrate_only(v.x, v.m[:, :1])),
           lambda v, d: _augment(v, substrate_only(d(v.fake), v.mu[:, :1]))),
    Critic("particle", "adv_particles", lambda v: _augment(v, v.x),
           lambda v, d: _augment(v, particles_into(v.x, d(v.drawn), v.m[:, :1]))),
)
#: Loss-record names of the critics (as written by earlier versions, kept for comparable logs).
_RECORD = {"image": "image", "mask": "mask", "texture": "texture", "substrate": "substrate", "particle": "particles"}


def critic_loss(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares critic loss on a real and a (detached) fake batch (pytorch-CycleGAN's ``backward_D_basic``)."""
    return 0.5 * (lsgan(critic(real), True) + lsgan(critic(fake), False))


def _split_adam_state(state: dict, sizes: list[int]) -> list[dict]:
    """One Adam state over several modules' parameters (in order) as one state per module."""
    out, first = [], 0
    for n in sizes:
        group = dict(state["param_groups"][0], params=list(range(n)))
        out.append({"state": {i: state["state"][first + i] for i in range(n) if first + i in state["state"]},
                    "param_groups": [group]})
        first += n
    return out


def _optimizer_states(training: dict, nets: "CycleGAN") -> dict[str, dict]:
    """The optimizers' states of a ``last.pt`` by name, also from the layout of earlier versions."""
    if "optimizers" in training:
        return training["optimizers"]
    states = {"generator": training["opt_g"], "segmenter": training["opt_s"]}
    sizes = [len(list(nets.image_critic.parameters())), len(list(nets.mask_critic.parameters()))]
    states["critic_image"], states["critic_mask"] = _split_adam_state(training["opt_d"], sizes)
    for name, key in (("texture", "opt_t"), ("substrate", "opt_b"), ("particle", "opt_p")):
        if key in training:
            states[f"critic_{name}"] = training[key]
    return states


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
    out_dir, last_path = run_folder(out_dir)
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    nets = CycleGAN(generator_config, segmenter_config, critic_channels=config.critic_channels)
    if init_segmenter is not None:
        nets.image_to_mask.load_state_dict(load_checkpoint(init_segmenter, kind=ModelKind.SEGMENTER)["state_dict"])
    if init_generator is not None:
        nets.mask_to_image.load_state_dict(load_checkpoint(init_generator, kind=ModelKind.GENERATOR)["state_dict"])
        if invert_init_generator:
            nets.mask_to_image.invert_output_()
    elif invert_init_generator:
        raise ValueError("invert_init_generator needs an init_generator")
    ema = copy.deepcopy(nets.mask_to_image).eval().requires_grad_(False)
    # on the device before the optimizers load their state, which follows the parameters' device
    nets.to(device)
    w = config.weights
    critics = {c.name: getattr(nets, f"{c.name}_critic") for c in CRITICS}
    active = [c for c in CRITICS if not c.optional or getattr(w, c.weight) > 0]

    def adam(params, lr):
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))

    # the training phases' optimizers: generator (with the style encoder), segmenter, each critic
    optimizers = {"generator": adam(list(nets.mask_to_image.parameters()) + list(nets.style_encoder.parameters()),
                                    config.lr_generator),
                  "segmenter": adam(nets.image_to_mask.parameters(), config.lr_segmenter),
                  **{f"critic_{name}": adam(net.parameters(), config.lr_critic) for name, net in critics.items()}}
    start, best, history = 0, -1.0, []
    if last_path.exists():
        state = load_checkpoint(last_path, kind=ModelKind.CYCLEGAN)
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
        for name, opt_state in _optimizer_states(state["training"], nets).items():
            optimizers[name].load_state_dict(opt_state)  # critics added later than the run start afresh
        start = state["training"]["step"]
        best = state["training"].get("best_score", -1.0)
        history = state["training"].get("history", [])
    ema.to(device)
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

    def save(step: int) -> str:
        prov = dict(provenance, step=step)
        save_checkpoint(last_path, {
            "kind": ModelKind.CYCLEGAN.value, "state_dict": sd(nets), "ema": sd(ema), "provenance": prov,
            "generator_config": generator_config.to_dict(), "segmenter_config": segmenter_config.to_dict(),
            "training": {"step": step, "ema_warmup": True, "best_score": best, "history": history,
                         "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()}},
        })
        save_checkpoint(out_dir / "generator.pt", {"kind": ModelKind.GENERATOR.value,
                                                   "config": generator_config.to_dict(),
                                                   "state_dict": sd(ema), "provenance": prov})
        save_checkpoint(out_dir / "segmenter.pt", {"kind": ModelKind.SEGMENTER.value,
                                                   "config": segmenter_config.to_dict(),
                                                   "state_dict": sd(nets.image_to_mask), "provenance": prov})
        return str(last_path)

    clock = Clock(config.steps, start)
    for step in range(start, config.steps):
        if should_stop():
            yield clock.stopped(step, save(step))
            return
        rng = np.random.default_rng([config.seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        b, p = config.batch_size, config.patch_size
        x01, m = sample_batch({"paired": paired}, b, p, rng, GEOMETRY_ONLY)
        xu01, _ = sample_batch(image_pool, b, p, rng, GEOMETRY_ONLY)
        _, mu = sample_batch(mask_pool, b, p, rng, GEOMETRY_ONLY)
        x, m, xu, mu = to_gan(x01).to(device), m.to(device), to_gan(xu01).to(device), mu.to(device)
        xs, ms, weight = to_segmenter(x), m, None  # the segmenter's supervised batch, in its own input range
        if config.segmenter_augment or config.contact_weight > 0 or config.segmenter_patch_size not in (None, p):
            augment = AugmentConfig() if config.segmenter_augment else GEOMETRY_ONLY
            xs, ms = sample_batch({"paired": paired}, b, config.segmenter_patch_size or p, rng, augment,
                                  with_contact=config.contact_weight > 0)
            if config.contact_weight > 0:
                ms, weight = ms[:, :2], (1.0 + config.contact_weight * ms[:, 2:]).to(device)
            xs, ms = xs.to(device), ms.to(device)
        nets.train()

        # ---- generator + segmenter phase (critics frozen); during the critics' warm-up, forward only
        warming = step < config.critic_warmup
        if warming:  # the fakes as the current networks draw them, nothing learns but the critics
            for net in (nets.mask_to_image, nets.image_to_mask, nets.style_encoder):
                net.eval()
        with torch.set_grad_enabled(not warming):
            for net in critics.values():
                net.requires_grad_(False)
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
            views = Views(x, m, xu, mu, fake, pred_u, drawn, gen)
            adversarial = {c.name: lsgan(critics[c.name](c.fake(views, lambda t: t)), True) for c in active}
            diversity = 1.0 / ((fake - fake2).abs().mean() / (z1 - z2).abs().mean() + 1e-3) * 1e-2
            loss_g = (w.cycle_mask * cyc_m + w.cycle_image * cyc_x + w.supervised_mask * sup_m
                      + w.supervised_image * sup_x + w.diversity * diversity
                      + sum(getattr(w, c.weight) * adversarial[c.name] for c in active))
        if not warming:
            optimizers["generator"].zero_grad(set_to_none=True)
            optimizers["segmenter"].zero_grad(set_to_none=True)
            loss_g.backward()
            optimizers["generator"].step()
            optimizers["segmenter"].step()

        # ---- critic phase, on detached fakes
        critic_losses = {}
        for c in active:
            net = critics[c.name].requires_grad_(True)
            critic_losses[c.name] = critic_loss(net, c.real(views), c.fake(views, torch.Tensor.detach))
            optimizers[f"critic_{c.name}"].zero_grad(set_to_none=True)
            critic_losses[c.name].backward()
            optimizers[f"critic_{c.name}"].step()

        with torch.no_grad():  # (during the warm-up the generator does not change, nor does its average)
            for pe, pg in zip(ema.parameters(), nets.mask_to_image.parameters()):
                pe.lerp_(pg, 1 - ema_decay_at(step, config.ema_decay))
        done = step + 1
        losses = {f"critic_{_RECORD[k]}": v for k, v in critic_losses.items()}
        if not warming:  # during the warm-up nothing but the critics learned: their losses only
            losses.update({f"adv_{_RECORD[k]}": v for k, v in adversarial.items()}, cycle_mask=cyc_m,
                          cycle_image=cyc_x, supervised_mask=sup_m, supervised_image=sup_x, diversity=diversity,
                          total=loss_g)
        record = {k: float(v.detach()) for k, v in losses.items()}
        checkpoint, validation = None, None
        if val and config.val_every > 0 and (done % config.val_every == 0 or done == config.steps):
            nets.image_to_mask.eval()
            validation = evaluate(nets.image_to_mask, val)
            history.append({"step": done, **validation})
            if validation["score"] > best:
                best = validation["score"]
                best_path = out_dir / "segmenter_best.pt"
                save_checkpoint(best_path, {"kind": ModelKind.SEGMENTER.value, "config": segmenter_config.to_dict(),
                                            "state_dict": sd(nets.image_to_mask),
                                            "provenance": dict(provenance, step=done, validation=validation)})
                checkpoint = str(best_path)
        if done % config.checkpoint_every == 0 or done == config.steps:
            last = save(done)
            checkpoint = checkpoint or last
        yield clock.record(done, record, validation, checkpoint)
