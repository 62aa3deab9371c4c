"""Can the cycle GAN's image critic tell a generator's images from real ones? Prints JSON.

    python -m bench.critic_probe [--model default] [--steps 400] [--variants shipped,no_diffaugment,...]

A diagnostic. In the cycle-GAN training runs measured, the image critic's LSGAN loss
sits at 0.25, the value of a critic that scores everything 0.5, from the first hundred
steps on, although the synthetic substrate is visibly flatter than the real one. This
probe freezes the generator and trains fresh critics, one per variant, on a fixed pool
of real training patches against the generator's raw output for the same masks
(what the critic sees in training), then scores patches of the held-out images and
masks: the area under the ROC curve of the per-patch mean score (0.5: blind, 1: always
right) and the critic loss on them.

Variants (each changes one thing from ``shipped``, the training critic):
``shipped`` PatchCritic(1, 32), spectral norm, DiffAugment; ``no_diffaugment``;
``no_spectral_norm``; ``wide`` (64 channels); ``substrate`` (the substrate critic:
particles blacked out).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


VARIANTS = ("shipped", "no_diffaugment", "no_spectral_norm", "wide", "substrate")


def roc_auc(real_scores: np.ndarray, fake_scores: np.ndarray) -> float:
    """P(score of a random real patch > score of a random fake one), ties counted half."""
    r, f = np.asarray(real_scores, float)[:, None], np.asarray(fake_scores, float)[None, :]
    return float((r > f).mean() + 0.5 * (r == f).mean())


def make_critic(variant: str):
    from napari_nanogan.models.discriminator import PatchCritic

    critic = PatchCritic(1, base_channels=64 if variant == "wide" else 32)
    if variant == "no_spectral_norm":
        for module in critic.modules():
            if hasattr(module, "weight_orig"):
                torch.nn.utils.remove_spectral_norm(module)
                module.reset_parameters()  # PyTorch's default initialisation, unnormalised
    return critic


def patches(samples, n: int, size: int, seed: int):
    """n (image in [-1, 1], mask maps) patches from ``samples``, geometric augmentation only, as the critics get them."""
    from napari_nanogan.data.augment import sample_batch
    from napari_nanogan.config import GEOMETRY_ONLY
    from napari_nanogan.data.targets import SEED_DEPTH
    from napari_nanogan.training.cyclegan import to_gan

    for s in samples:
        s.use_seed_depth(SEED_DEPTH)
    x01, m = sample_batch({"paired": samples}, n, size, np.random.default_rng(seed), GEOMETRY_ONLY)
    return to_gan(x01), m[:, :2]


@torch.no_grad()
def fakes(network, masks: torch.Tensor, seed: int, batch: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(masks), batch):
        m = masks[i : i + batch]
        z = network.sample_latents(len(m), generator=g)
        noise = network.sample_noise(len(m), tuple(m.shape[-2:]), generator=g)
        out.append(network(m, z, noise))
    return torch.cat(out)


def probe(variant: str, train: dict, test: dict, steps: int, batch: int, seed: int, lr: float = 2e-4) -> dict:
    from napari_nanogan.models.discriminator import diff_augment
    from napari_nanogan.training.cyclegan import lsgan, substrate_only

    torch.manual_seed(seed)
    critic = make_critic(variant)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed)
    augment = variant != "no_diffaugment"

    def view(x, m):
        x = substrate_only(x, m[:, :1]) if variant == "substrate" else x
        return diff_augment(x, generator=g) if augment else x

    n = len(train["real"])
    losses = []
    t0 = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(n, (batch,), generator=g)
        j = torch.randint(n, (batch,), generator=g)
        loss = 0.5 * (lsgan(critic(view(train["real"][i], train["real_masks"][i])), True)
                      + lsgan(critic(view(train["fake"][j], train["fake_masks"][j])), False))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    critic.eval()
    with torch.no_grad():
        def scores(x, m):
            x = substrate_only(x, m[:, :1]) if variant == "substrate" else x
            return critic(x)

        s_real, s_fake = scores(test["real"], test["real_masks"]), scores(test["fake"], test["fake_masks"])
        held_loss = 0.5 * (float(lsgan(s_real, True)) + float(lsgan(s_fake, False)))
    return {"variant": variant, "train_loss_first_50": float(np.mean(losses[:50])),
            "train_loss_last_50": float(np.mean(losses[-50:])), "held_out_loss": held_loss,
            "held_out_auc": roc_auc(s_real.mean(dim=(1, 2, 3)).numpy(), s_fake.mean(dim=(1, 2, 3)).numpy()),
            "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.critic_probe")
    ap.add_argument("--model", default="default")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--pool", type=int, default=256, help="real and fake training patches each")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-4, help="the critic's Adam learning rate (training: 2e-4)")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")

    from napari_nanogan.data.datasets import load_samples, shared_splits
    from napari_nanogan.synthesis import load_generator

    split = shared_splits(args.data_root)["bam"]
    network = load_generator(args.model, device="cpu").network.eval()
    data = {}
    for part, triples, seed in (("train", split["train"], args.seed), ("test", split["val"] + split["test"], 10_000 + args.seed)):
        samples = load_samples(triples, domain="bam")
        real, real_masks = patches(samples, args.pool, args.patch, seed)
        _, fake_masks = patches(samples, args.pool, args.patch, seed + 1)  # other positions: not the real patches' masks
        data[part] = {"real": real, "real_masks": real_masks, "fake": fakes(network, fake_masks, seed), "fake_masks": fake_masks}
    results = [probe(v, data["train"], data["test"], args.steps, args.batch, args.seed, args.lr) for v in variants]
    print(json.dumps({"model": args.model, "steps": args.steps, "lr": args.lr, "batch": args.batch, "patch": args.patch,
                      "pool": args.pool, "results": results}, indent=1))


if __name__ == "__main__":
    main()
