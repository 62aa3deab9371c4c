"""A learned texture refiner after the generator, measured and not kept; prints JSON.

    python -m bench.texture_refiner --mode real --sigma 1.5 --steps 4000 --out runs/refiner-sigma1.5
    python -m bench.texture_refiner --mode real --sigma 3 --steps 3000 --out runs/refiner-sigma3
    python -m bench.texture_refiner --mode simgan --sigma 2 --steps 3000 --out runs/refiner-simgan

The shipped generator's images lack the BAM substrate's speckle and the particles'
surface detail (docs/benchmarks.md, "Synthesis"). This tries to add them after the
generator with a small fully convolutional network (8 convolutions of 24 channels,
dilations up to 8, a white-noise input so each seed gets its own texture; it adds a
residual to its input, starting from zero), trained adversarially (LSGAN) against a
conditional PatchGAN critic (batch 8 x 96 x 96), only on the BAM training split:

- ``--mode real``: the refiner learns to put back what a Gaussian blur of ``--sigma``
  px took from the real training images (critic on [blurred, image]; L1 between the
  re-blurred output and the input keeps the content). Synthetic images are then
  blurred by the same sigma, calibrated to the blurred training images
  (``synthesis.finishing.calibration``) and refined.
- ``--mode simgan`` (Shrivastava et al. 2017): the refiner takes the generator's own
  calibrated images of the training masks (6 styles each) and learns to make them
  pass for the real training images (critic on [image, particle mask]; L1 between
  both blurred by ``--sigma`` keeps the content).

After training, FID/KID under the synthesis protocol (500 random 256-px crops of the
9 held-out BAM images vs 500 of the refined images; ``--mode real`` also the
training images blurred and refined, against the floor's own blurred images).
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

from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.models.discriminator import PatchCritic, diff_augment
from napari_nanogan.training.cyclegan import gaussian_blur, lsgan

from bench.synthesis_quality import load_bam


class Refiner(nn.Module):
    """image [-1, 1] + white noise -> image plus a learned residual (zero at initialisation)."""

    def __init__(self, channels: int = 24, dilations=(1, 2, 4, 8, 2, 1)):
        super().__init__()
        self.inp = nn.Conv2d(2, channels, 3, padding=1)
        self.body = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in dilations])
        self.out = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.inp(torch.cat([x, noise], 1)), 0.2)
        for conv in self.body:
            h = h + F.leaky_relu(conv(h), 0.2)
        return x + self.out(h)


def to_net(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, np.float32) / 127.5 - 1)


def refine(refiner: Refiner, image: np.ndarray, seed: int) -> np.ndarray:
    with torch.inference_mode():
        x = to_net(image)[None, None]
        out = refiner(x, torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)))
    return np.clip((out[0, 0].numpy() + 1) * 127.5, 0, 255)


def crop_pair(rng, a: np.ndarray, b: np.ndarray, size: int):
    y, x = rng.integers(a.shape[0] - size + 1), rng.integers(a.shape[1] - size + 1)
    return a[y : y + size, x : x + size], b[y : y + size, x : x + size]


def train(args, reals, masks, bank, bank_masks):
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    refiner, critic = Refiner(), PatchCritic(2, 32, 3)
    opt_r = torch.optim.Adam(refiner.parameters(), 2e-4, betas=(0.5, 0.99))
    opt_c = torch.optim.Adam(critic.parameters(), 2e-4, betas=(0.5, 0.99))
    t0 = time.time()
    for step in range(1, args.steps + 1):
        real, real_m, src, src_m = (np.empty((args.batch, 1, args.patch, args.patch), np.float32) for _ in range(4))
        for k in range(args.batch):
            i = rng.integers(len(reals))
            real[k, 0], real_m[k, 0] = crop_pair(rng, reals[i], masks[i], args.patch)
            if bank is not None:
                j = rng.integers(len(bank))
                src[k, 0], src_m[k, 0] = crop_pair(rng, bank[j], bank_masks[j], args.patch)
        real = to_net(real)
        if bank is None:  # real mode: the critic is conditioned on the blurred input
            src = cond = gaussian_blur(real, args.sigma)
            real_in = torch.cat([cond, real], 1)
        else:  # simgan mode: the critic is conditioned on the particle mask
            src, cond = to_net(src), torch.from_numpy(src_m * 2 - 1)
            real_in = torch.cat([real, torch.from_numpy(real_m * 2 - 1)], 1)
        fake = refiner(src, torch.randn_like(src))

        def aug(x, s):  # DiffAugment translation in simgan mode only (real mode's pairs are plentiful)
            return x if bank is None else diff_augment(x, generator=torch.Generator().manual_seed(s), colour=False, cutout=0)

        fake_in = torch.cat([cond, fake] if bank is None else [fake, cond], 1)
        c_loss = lsgan(critic(aug(real_in, 3 * step)), True) + lsgan(critic(aug(fake_in.detach(), 3 * step + 1)), False)
        opt_c.zero_grad()
        c_loss.backward()
        opt_c.step()
        adv = lsgan(critic(aug(fake_in, 3 * step + 2)), True)
        keep = (gaussian_blur(fake, args.sigma) - gaussian_blur(src, args.sigma) if bank is not None
                else gaussian_blur(fake, args.sigma) - src).abs().mean()
        opt_r.zero_grad()
        (adv + args.content_weight * keep).backward()
        opt_r.step()
        if step % 100 == 0 or step == args.steps:
            print(json.dumps({"step": step, "critic": round(c_loss.item(), 3), "adversarial": round(adv.item(), 3),
                              "content_l1_grey": round(keep.item() * 127.5, 3),
                              "residual_sd_grey": round((fake - src).std().item() * 127.5, 2),
                              "seconds": round(time.time() - t0, 1)}), file=sys.stderr, flush=True)
    torch.save({"state_dict": refiner.state_dict(), "sigma": args.sigma, "mode": args.mode, "steps": args.steps},
               Path(args.out) / "refiner.pt")
    return refiner, (time.time() - t0) / args.steps


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.texture_refiner")
    ap.add_argument("--mode", choices=["real", "simgan"], default="real")
    ap.add_argument("--sigma", type=float, default=1.5)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--content-weight", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="default", help="generator whose images are refined")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    Path(args.out).mkdir(parents=True, exist_ok=True)

    from napari_nanogan.data.targets import targets_from_labels
    from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
    from napari_nanogan.synthesis import load_generator, synthesize
    from napari_nanogan.synthesis.finishing import calibration

    split = shared_splits(args.data_root)["bam"]
    held, train_set = load_bam(split["val"] + split["test"]), load_bam(split["train"])
    reals = [im for im, _ in train_set]
    masks = [targets_from_labels(lab)[0].astype(np.float32) for _, lab in train_set]
    gen = load_generator(args.model, device="cpu")
    pp = gen.finishing  # its grey-level calibration is applied below (blur and noise are not)

    def raw(lab, seed):
        return synthesize(lab, gen, seed=seed, raw=True).astype(np.float32)

    bank = bank_masks = None
    if args.mode == "simgan":  # the generator's calibrated images of the training masks, 6 styles each
        bank, bank_masks = [], []
        for i, (_, lab) in enumerate(train_set):
            for s in range(6):
                bank.append(np.clip(pp.gain * raw(lab, 7000 + 10 * i + s) + pp.offset, 0, 255))
                bank_masks.append(masks[i])
    refiner, seconds_per_step = train(args, reals, masks, bank, bank_masks)
    refiner.eval()

    net = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, 256, seed=0)
    result = {"mode": args.mode, "sigma": args.sigma, "steps": args.steps, "seconds_per_step": round(seconds_per_step, 3),
              "batch": f"{args.batch} x {args.patch} x {args.patch}"}
    seeds, synth = [], []
    for i, (_, lab) in enumerate(held):
        for s in range(3):
            seeds.append(1000 * i + s)
            synth.append(raw(lab, seeds[-1]))
    if args.mode == "real":
        blurred_train = [ndi.gaussian_filter(im, args.sigma) for im in reals]
        result["real_training_blurred"] = fid_kid(real_eval, random_crops(blurred_train, args.n, 256, seed=1), net)
        result["real_training_blurred_refined"] = fid_kid(
            real_eval, random_crops([refine(refiner, im, 7 + k) for k, im in enumerate(blurred_train)], args.n, 256, seed=1), net)
        fit = [raw(lab, 10**5 + i) for i, (_, lab) in enumerate(train_set)]
        gain, offset = calibration(blurred_train, [ndi.gaussian_filter(im, args.sigma) for im in fit])
        inputs = [np.clip(gain * ndi.gaussian_filter(im, args.sigma) + offset, 0, 255) for im in synth]
    else:
        inputs = [np.clip(pp.gain * im + pp.offset, 0, 255) for im in synth]
    result["generator_refined"] = fid_kid(real_eval, random_crops([refine(refiner, im, s) for im, s in zip(inputs, seeds)],
                                                                  args.n, 256, seed=2), net)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
