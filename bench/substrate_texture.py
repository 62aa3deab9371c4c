"""A learned substrate texture (``LearnedTexture``) over the generator's flat substrate; prints JSON.

    python -m bench.substrate_texture --texture runs/texture/texture.pt        # a texture from `nanogan train-texture`
    python -m bench.substrate_texture --transplant --sigma 16                  # the diagnostic below, no network

The shipped generator's substrate is flat; the real BAM substrate carries faint rings
and squiggles 5-20 px across and detector noise. ``bench.synthesis_parts`` put the
real substrate under the synthetic particles: FID 118.3 -> 68.8. ``nanogan
train-texture`` learns that texture from the real substrate alone, and
``LearnedTexture.apply`` lays it over a synthetic image: the image's own substrate
level (a Gaussian of ``sigma`` px normalised over the substrate, particles excluded)
plus the learned band-pass residual, blended in at the dilated mask's edge.

Reported, under the protocol of ``bench.synthesis_quality`` (500 random 256-px crops of
the 9 held-out images against 500 of the synthetic ones, info bar excluded):

- ``checkpoint``: the ``--model`` generator as ``synthesize`` returns it, without any
  substrate texture of its own (baseline);
- ``checkpoint_texture``: the same images with the texture laid over their substrate;
- ``real_training_texture``: the real training images with their own substrate residual
  replaced: how good the texture is when the content is perfect (floor 28.6);
- ``cycle_dice_texture``: Dice of ``auto``'s segmentation of the textured images;
- ``variants`` (``--variants gain:1.5,margin:1``): ``checkpoint_texture`` again with the
  texture's amplitude or its particle margin (px) changed at inference, the network unchanged.

``--transplant`` replaces the learned texture by another training image's real residual
(random image, offset and left-right flip; where that image has particles the synthetic
image keeps its own substrate): what a perfect texture model would give. It is a
diagnostic only: nothing of it is shipped, as the data's licence forbids.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi


from napari_nanogan.models.texture import band_pass, lowpass_w
from napari_nanogan.synthesis.texture import LearnedTexture, substrate_weight


def real_residual(image: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """A real image's own band-pass substrate residual (grey levels), zero off the substrate."""
    with torch.inference_mode():
        x, wt = torch.from_numpy(np.asarray(image, np.float32))[None, None], torch.from_numpy(w)[None, None]
        return band_pass(x, wt, sigma)[0, 0].numpy()


def transplant(bank: list, shape: tuple, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Another training image's real residual (random image, flip and offset, tiled), and where it is valid."""
    rng = np.random.default_rng(seed)
    residual, valid = bank[rng.integers(len(bank))]
    if rng.random() < 0.5:
        residual, valid = residual[:, ::-1], valid[:, ::-1]
    reps = (-(-shape[0] // residual.shape[0]) + 1, -(-shape[1] // residual.shape[1]) + 1)
    y, x = rng.integers(residual.shape[0]), rng.integers(residual.shape[1])
    tile = lambda a: np.tile(a, reps)[y : y + shape[0], x : x + shape[1]]  # noqa: E731
    return tile(residual), tile(valid)


def transplanted(image: np.ndarray, labels: np.ndarray, bank: list, sigma: float, seed: int) -> np.ndarray:
    """``LearnedTexture.apply`` with a transplanted real residual instead of the learned one."""
    w = substrate_weight(labels, 3)
    residual, valid = transplant(bank, w.shape, seed)
    w = w * valid
    with torch.inference_mode():
        level = lowpass_w(torch.from_numpy(np.asarray(image, np.float32))[None, None], torch.from_numpy(w)[None, None],
                          sigma)[0, 0].numpy()
    soft = np.clip(ndi.gaussian_filter(w, 1.5) * 2 - 1, 0, 1) * w
    return np.clip(soft * (level + residual) + (1 - soft) * np.asarray(image, np.float32), 0, 255).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.substrate_texture")
    ap.add_argument("--texture", help="texture.pt from `nanogan train-texture`")
    ap.add_argument("--transplant", action="store_true", help="diagnostic: real residuals of other training images")
    ap.add_argument("--sigma", type=float, default=16.0, help="the transplant's high-pass scale (px)")
    ap.add_argument("--model", default="default", help="generator whose images get the texture")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--fit-gain", action="store_true",
                    help="first fit the texture's amplitude to the training images' residual (LearnedTexture.fit_gain)")
    ap.add_argument("--real-only", action="store_true", help="stop after real_training_texture (a quick check)")
    ap.add_argument("--variants", default="", help="also measure the texture with gain:G or margin:M (comma-separated)")
    ap.add_argument("--skip-baseline", action="store_true", help="skip `checkpoint` (the images without any texture)")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    if bool(args.texture) == args.transplant:
        ap.error("give --texture or --transplant")

    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
    from napari_nanogan.metrics.segmentation import foreground_scores
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.segmentation import load_segmenter, segment
    from napari_nanogan.synthesis import load_generator, synthesize
    from bench.synthesis_quality import load_bam

    split = shared_splits(args.data_root)["bam"]
    held, train_set = load_bam(split["val"] + split["test"]), load_bam(split["train"])
    if args.transplant:
        bank = [(real_residual(im, w, args.sigma), w) for im, w in ((im, substrate_weight(lab, 3)) for im, lab in train_set)]
        lay = lambda im, lab, seed: transplanted(im, lab, bank, args.sigma, seed)  # noqa: E731
        what = {"transplant_sigma": args.sigma}
    else:
        data = load_checkpoint(args.texture)  # texture.pt, or a run's last.pt (its texture so far)
        if data.get("kind") == "texture-run":
            data = {"config": data["texture_config"], "state_dict": data["state_dict"], "step": data["step"]}
        elif data.get("kind") != "substrate-texture":
            raise SystemExit(f"{args.texture} is neither a texture.pt nor a train-texture run's last.pt")
        texture = LearnedTexture.from_dict(data)
        if args.fit_gain:
            texture.fit_gain([im for im, _ in train_set], [lab for _, lab in train_set])
        lay = lambda im, lab, seed: texture.apply(np.clip(np.round(im), 0, 255).astype(np.uint8), lab, seed)  # noqa: E731
        what = {"texture": args.texture, "step": data.get("step"), "config": texture.config.to_dict(),
                "gain": texture.gain}

    net = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, 256, seed=0)
    result = dict(what)
    retextured = [lay(im, lab, 50 + i).astype(np.float32) for i, (im, lab) in enumerate(train_set)]
    result["real_training_texture"] = fid_kid(real_eval, random_crops(retextured, args.n, 256, seed=1), net)
    print(json.dumps({"real_training_texture": result["real_training_texture"]}), file=sys.stderr, flush=True)
    if args.real_only:
        print(json.dumps(result))
        return
    gen = load_generator(args.model, device="cpu")
    gen.texture = None  # the baseline without any texture the checkpoint may carry
    base, textured, labels = [], [], []
    for i, (_, lab) in enumerate(held):
        for s in range(3):
            seed = 1000 * i + s
            im = synthesize(lab, gen, seed=seed)
            base.append(im.astype(np.float32))
            textured.append(np.asarray(lay(im, lab, seed), np.float32))
            labels.append(lab)
    if not args.skip_baseline:
        result["checkpoint"] = fid_kid(real_eval, random_crops(base, args.n, 256, seed=2), net)
    result["checkpoint_texture"] = fid_kid(real_eval, random_crops(textured, args.n, 256, seed=2), net)
    print(json.dumps({"checkpoint_texture": result["checkpoint_texture"]}), file=sys.stderr, flush=True)
    for variant in filter(None, args.variants.split(",")):
        if args.transplant:
            raise SystemExit("--variants needs --texture")
        key, value = variant.split(":")
        if key not in ("gain", "margin"):
            raise SystemExit(f"unknown variant {variant!r}: use gain:G or margin:M")
        data = texture.to_dict()  # a copy of the texture with one setting changed
        if key == "gain":
            data["gain"] = float(value)
        else:
            data["config"] = {**data["config"], "margin": int(value)}
        changed = LearnedTexture.from_dict(data)
        imgs = [changed.apply(np.clip(np.round(im), 0, 255).astype(np.uint8), lab, 1000 * (k // 3) + k % 3).astype(np.float32)
                for k, (im, lab) in enumerate(zip(base, labels))]
        result.setdefault("variants", {})[variant] = fid_kid(real_eval, random_crops(imgs, args.n, 256, seed=2), net)
        print(json.dumps({variant: result["variants"][variant]}), file=sys.stderr, flush=True)
    seg = load_segmenter("auto", device="cpu")
    dices = [foreground_scores(lab, segment(np.clip(np.round(im), 0, 255).astype(np.uint8), seg, info_bar=None).labels)[0]
             for im, lab in zip(textured[::3], labels[::3])]
    result["cycle_dice_texture"] = {"mean": float(np.mean(dices)), "min": float(np.min(dices))}
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
