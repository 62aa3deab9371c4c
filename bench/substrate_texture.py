"""A learned substrate texture laid over the generator's flat substrate (session 15; prints JSON).

    python bench/substrate_texture.py --steps 3000 --out runs/s15/texture

The shipped generator's substrate is flat; the real BAM substrate carries faint
rings and squiggles 5-20 px across (out-of-focus particles underneath, surface
relief) plus detector noise. ``bench/synthesis_parts.py`` puts the real substrate
under the synthetic particles: FID 118.3 -> 68.8. Session 13's refiner, conditioned
on the generator's flat content, had nothing to work from. This tries an
unconditional one: a small fully convolutional texture network (spatial noise at
1/8 resolution, three x2 upsamplings with noise injected at each; Jetchev et al. 2016,
"Texture synthesis with spatial GANs") learns the substrate's band-pass texture
alone, adversarially (LSGAN, PatchGAN critic), from the BAM training split only.

What it learns and what the critic compares: the texture after a mask-aware
high-pass, ``x - lowpass_w(x)`` with ``lowpass_w(x) = G(x w) / G(w)`` (a normalised
Gaussian of ``--sigma`` px over the substrate weight ``w``: the particle mask dilated
by 3 px, inverted). Real patches give their own residual and ``w``; the texture
network's output goes through the same filter with the same real patch's ``w``, so
both sides look alike except for the texture itself.

Composite of a synthetic image: ``lowpass_w(post-processed image) + texture residual``
over the substrate, blended into the post-processed image over 1.5 px at the dilated
mask's edge; the particles and their rims stay the generator's.

Reported (the protocol of ``synthesis_quality.py``: 500 random 256-px crops of the 9
held-out images against 500 of the synthetic ones, info bar excluded):
``checkpoint`` (the shipped post-processing, the baseline), ``checkpoint_texture``
(with the learned substrate), ``real_training_texture`` (the real training images with
their own substrate residual replaced by the learned one: how good the texture is
with perfect content), and the cycle Dice of the composite through ``auto``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import nn

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

SCALE = 8.0  # grey levels per network unit: the residual is a few grey levels


class TextureNet(nn.Module):
    """Spatial noise [N, z, H/8, W/8] -> texture [N, 1, H, W] (in units of SCALE grey levels)."""

    def __init__(self, z_channels: int = 16, widths=(64, 48, 32, 24), upsample: str = "nearest"):
        super().__init__()
        self.z_channels, self.upsample = z_channels, upsample
        self.inp = nn.Sequential(nn.Conv2d(z_channels, widths[0], 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(widths[0], widths[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.ups = nn.ModuleList()
        self.noise_gain = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            self.ups.append(nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.LeakyReLU(0.2),
                                          nn.Conv2d(b, b, 3, padding=1), nn.LeakyReLU(0.2)))
            self.noise_gain.append(nn.Parameter(torch.full((1, a, 1, 1), 0.1)))
        self.out = nn.Conv2d(widths[-1], 1, 1)

    def forward(self, z: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        h = self.inp(z)
        for up, gain, n in zip(self.ups, self.noise_gain, noise):
            h = F.interpolate(h, scale_factor=2, mode=self.upsample,
                              **({} if self.upsample == "nearest" else {"align_corners": False}))
            h = up(h + gain * n)
        return self.out(h)

    def sample(self, n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        """A texture of at least height x width (cropped), from fixed-seed noise."""
        zh, zw = -(-height // 8), -(-width // 8)
        z = torch.randn(n, self.z_channels, zh, zw, generator=generator)
        noise = [torch.randn(n, 1, zh * 2**k, zw * 2**k, generator=generator) for k in (1, 2, 3)]
        return self(z, noise)[..., :height, :width]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur0(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable blur of [N, 1, H, W] with zero padding (for normalised convolution)."""
    r = (len(k) - 1) // 2
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0))


def lowpass_w(x: torch.Tensor, w: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Normalised Gaussian of x over the weight w: the substrate's local level, particles ignored."""
    return blur0(x * w, k) / blur0(w, k).clamp_min(1e-3)


def substrate_weight(labels: np.ndarray, margin: int = 3) -> np.ndarray:
    """1 on the substrate, 0 on particles dilated by ``margin`` px."""
    return (~ndi.binary_dilation(labels > 0, iterations=margin)).astype(np.float32)


def train(args, reals, weights):
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    from napari_nanogan.models.discriminator import PatchCritic
    from napari_nanogan.training.cyclegan import lsgan

    net, critic = TextureNet(upsample=args.upsample), PatchCritic(2, 32, args.critic_layers)
    opt_t = torch.optim.Adam(net.parameters(), 2e-4, betas=(0.5, 0.99))
    opt_c = torch.optim.Adam(critic.parameters(), 2e-4, betas=(0.5, 0.99))
    k = gaussian_kernel(args.sigma)
    p, margin = args.patch, 16
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    log = []
    for step in range(1, args.steps + 1):
        real = np.empty((args.batch, 1, p, p), np.float32)
        w = np.empty_like(real)
        for b in range(args.batch):
            for _ in range(20):  # mostly-substrate patches
                i = rng.integers(len(reals))
                y, x = rng.integers(reals[i].shape[0] - p + 1), rng.integers(reals[i].shape[1] - p + 1)
                if weights[i][y : y + p, x : x + p].mean() >= 0.5:
                    break
            real[b, 0], w[b, 0] = reals[i][y : y + p, x : x + p], weights[i][y : y + p, x : x + p]
        real, w = torch.from_numpy(real), torch.from_numpy(w)
        real_r = (real - lowpass_w(real, w, k)) * w / SCALE
        tex = net.sample(args.batch, p + 2 * margin, p + 2 * margin, g)[..., margin : margin + p, margin : margin + p]
        fake_r = (tex - lowpass_w(tex, w, k)) * w
        real_in, fake_in = torch.cat([real_r, w], 1), torch.cat([fake_r, w], 1)
        c_loss = lsgan(critic(real_in), True) + lsgan(critic(fake_in.detach()), False)
        opt_c.zero_grad()
        c_loss.backward()
        opt_c.step()
        adv = lsgan(critic(fake_in), True)
        opt_t.zero_grad()
        adv.backward()
        opt_t.step()
        if step % 100 == 0 or step == args.steps:
            rec = {"step": step, "critic": round(c_loss.item(), 3), "adversarial": round(adv.item(), 3),
                   "real_sd_grey": round((real_r.std() * SCALE).item(), 2),
                   "fake_sd_grey": round((fake_r.std() * SCALE).item(), 2), "seconds": round(time.time() - t0, 1)}
            log.append(rec)
            print(json.dumps(rec), file=sys.stderr, flush=True)
    torch.save({"state_dict": net.state_dict(), "sigma": args.sigma, "steps": args.steps, "upsample": args.upsample},
               Path(args.out) / "texture.pt")
    return net, (time.time() - t0) / args.steps


def texture_residual(net: TextureNet, w: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """The learned texture for a whole image (grey levels), high-passed over the substrate weight w."""
    with torch.inference_mode():
        g = torch.Generator().manual_seed(seed)
        tex = net.sample(1, w.shape[0], w.shape[1], g)
        wt = torch.from_numpy(w)[None, None]
        return ((tex - lowpass_w(tex, wt, gaussian_kernel(sigma))) * SCALE)[0, 0].numpy()


def real_residual(image: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """A real image's own substrate residual (grey levels), valid where w == 1."""
    with torch.inference_mode():
        x, wt = torch.from_numpy(np.asarray(image, np.float32))[None, None], torch.from_numpy(w)[None, None]
        return (x - lowpass_w(x, wt, gaussian_kernel(sigma)))[0, 0].numpy()


def transplant(bank: list, shape: tuple, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The diagnostic's texture: another training image's real substrate residual (random flip and
    offset), and where it is valid (its own substrate)."""
    rng = np.random.default_rng(seed)
    residual, valid = bank[rng.integers(len(bank))]
    if rng.random() < 0.5:
        residual, valid = residual[:, ::-1], valid[:, ::-1]
    reps = (-(-shape[0] // residual.shape[0]) + 1, -(-shape[1] // residual.shape[1]) + 1)
    y, x = rng.integers(residual.shape[0]), rng.integers(residual.shape[1])
    tile = lambda a: np.tile(a, reps)[y : y + shape[0], x : x + shape[1]]  # noqa: E731
    return tile(residual), tile(valid)


def with_texture(image: np.ndarray, labels: np.ndarray, net, sigma: float, seed: int,
                 amount: float = 1.0) -> np.ndarray:
    """The image with its substrate's band-pass content replaced by the learned texture
    (``net`` a TextureNet, or a bank of real residuals: the transplant diagnostic)."""
    w = substrate_weight(labels)
    k = gaussian_kernel(sigma)
    with torch.inference_mode():
        low = lowpass_w(torch.from_numpy(np.asarray(image, np.float32))[None, None], torch.from_numpy(w)[None, None], k)[0, 0].numpy()
    if isinstance(net, list):
        residual, valid = transplant(net, w.shape, seed)
        w = w * valid
    else:
        residual = texture_residual(net, w, sigma, seed)
    sub = low + amount * residual
    soft = np.clip(ndi.gaussian_filter(w, 1.5) * 2 - 1, 0, 1) * w  # 0 at the dilated mask's edge, 1 inside the substrate
    return np.clip(soft * sub + (1 - soft) * np.asarray(image, np.float32), 0, 255).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--sigma", type=float, default=6.0, help="high-pass scale (px): what counts as texture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--upsample", default="nearest", choices=["nearest", "bilinear"])
    ap.add_argument("--critic-layers", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--load", default=None, help="a texture.pt to evaluate instead of training")
    ap.add_argument("--transplant", action="store_true",
                    help="diagnostic: other training images' real substrate residuals instead of a learned texture")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    Path(args.out).mkdir(parents=True, exist_ok=True)

    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.inference import segment
    from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
    from napari_nanogan.metrics.segmentation import foreground_scores
    from napari_nanogan.models.pretrained import load_generator, load_segmenter
    from napari_nanogan.synthesis import synthesize
    from synthesis_quality import load_bam

    split = shared_splits(args.data_root)["bam"]
    held, train_set = load_bam(split["val"] + split["test"]), load_bam(split["train"])
    reals = [im for im, _ in train_set]
    weights = [substrate_weight(lab) for _, lab in train_set]
    if args.transplant:
        net, seconds_per_step, args.steps = [(real_residual(im, w, args.sigma), w) for im, w in zip(reals, weights)], None, 0
    elif args.load:
        data = torch.load(args.load, weights_only=True)
        net = TextureNet(upsample=data.get("upsample", "nearest"))
        net.load_state_dict(data["state_dict"])
        args.sigma, seconds_per_step = data["sigma"], None
    else:
        net, seconds_per_step = train(args, reals, weights)
    if not args.transplant:
        net.eval()

    inception = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, 256, seed=0)
    result = {"steps": args.steps, "sigma": args.sigma, "seconds_per_step": seconds_per_step,
              "batch": f"{args.batch} x {args.patch} x {args.patch}",
              "parameters": 0 if args.transplant else sum(p.numel() for p in net.parameters())}
    retextured = [with_texture(im, lab, net, args.sigma, 50 + i) for i, (im, lab) in enumerate(train_set)]
    result["real_training_texture"] = fid_kid(real_eval, random_crops(retextured, args.n, 256, seed=1), inception)
    print(json.dumps({"real_training_texture": result["real_training_texture"]}), file=sys.stderr, flush=True)
    gen = load_generator(args.model, device="cpu")
    base, textured, labels = [], [], []
    for i, (_, lab) in enumerate(held):
        for s in range(3):
            seed = 1000 * i + s
            im = synthesize(lab, gen, seed=seed).astype(np.float32)
            base.append(im)
            textured.append(with_texture(im, lab, net, args.sigma, seed))
            labels.append(lab)
    result["checkpoint"] = fid_kid(real_eval, random_crops(base, args.n, 256, seed=2), inception)
    result["checkpoint_texture"] = fid_kid(real_eval, random_crops(textured, args.n, 256, seed=2), inception)
    seg = load_segmenter("auto", device="cpu")
    dices = [foreground_scores(lab, segment(np.clip(np.round(im), 0, 255).astype(np.uint8), seg, info_bar=False).labels)[0]
             for im, lab in zip(textured[::3], labels[::3])]
    result["cycle_dice_texture"] = {"mean": float(np.mean(dices)), "min": float(np.min(dices))}
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
