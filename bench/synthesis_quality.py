"""Synthesis quality on BAM SEM (or EMPS bright-field TEM) under the protocol of docs/benchmarks.md; prints JSON.

    python -m bench.synthesis_quality [--model default] [--n 500] [--seeds 3]
                                      [--post none,hist,noise,blur,sharpen,blur+noise]
    python -m bench.synthesis_quality --dataset emps-tem --model tem --post checkpoint

Protocol (standard FID/KID, Inception pool3, TF1 resize, grey -> 3 channels):
256 x 256 crops at fixed-seed random positions, info bar excluded (specimen rows
only), ``--n`` crops per side. ``--dataset emps-tem``: the EMPS images with dark
particles at the model's scale, as the TEM generator learns from them
(``training.data.bright_field_samples``; most are under 256 px there), 128 x 128 crops.

- ``real_vs_real``: held-out real images (val + test split, never trained on) vs the
  training images: the floor a perfect generator would reach with these samples.
- ``generator``: images synthesized from the held-out images' masks (``--seeds``
  styles per mask) vs the held-out real images; one entry per post-processing:
  ``hist`` (grey-level histogram matched to the training images), ``noise`` (Gaussian
  noise added up to the training images' high-frequency noise level, exactly as
  ``synthesize()`` does for a generator with ``finishing.noise_residual``), ``blur``
  (Gaussian, sigma 0.7 px; ``blur:S`` for sigma S), ``sharpen`` (unsharp mask, sigma 1 px, amount 0.5), or a
  chain of them with "+" (``blur+noise``); ``calib`` (grey-level gain and offset) and
  ``spectral`` (calib plus Gaussian noise with the power spectrum the synthetic images
  lack), both fitted on synthetic images of the training masks vs the training images
  (``synthesis.finishing.calibration``); ``snoise`` (``snoise:C``: correlated over C px), noise whose
  level follows the brightness, fitted the same way (``bench.texture.signal_noise_table``); ``tone``
  (``tone:sampled``, ``tone:own``), a per-image linear map of the median background and
  particle grey levels (the mask is known) to the training images' (``post_process``).
  ``checkpoint`` is the checkpoint's own finishing (``Generator.finishing``) and learned
  textures (if it has them), exactly as ``synthesize()`` applies them. The synthetic
  images are the network's own output (``synthesize(..., raw=True)``), whatever the
  checkpoint's finishing.
- ``naive``: flat discs + blur + noise rendered from the same masks.
- ``real_vs_real_<post>`` (``--real-post blur+noise,blur:1.5``): the floor with the
  training images put through those post-processing steps (``blur``, ``noise``,
  ``hist``, ``sharpen``): what a step costs on images whose content is perfect.
  ``--real-only`` stops there.
- ``cycle``: Dice of segment(synthesize(mask)) vs mask with the shipped default
  segmenter (``--segmenter``, default ``auto``; ``synthesize`` as a user calls it, with
  the checkpoint's finishing and textures), the median of the per-image D50 of the particles'
  ECD in both, and the pooled D10/D50/D90 of whole particles of at least 16 px
  (as the segmentation metrics count them) in both.
- ``seconds_1024x768``: one synthesis of a 1024 x 768 mask on this CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.io.images import read_image
from napari_nanogan.io.infobar import detect_info_bar
from napari_nanogan.io.masks import instance_labels, read_mask
from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
from napari_nanogan.synthesis.finishing import noise_level


def load_bam(triples) -> list:
    """(image float32, instance labels) of BAM (stem, image, mask) triples, info bar rows dropped."""
    out = []
    for _, ip, mp in triples:
        img, _ = read_image(ip)
        bar = detect_info_bar(img)
        rows = bar.specimen_rows if bar else slice(None)
        out.append((img[rows].astype(np.float32), instance_labels(read_mask(mp)[rows])))
    return out


def naive_render(labels: np.ndarray, seed: int, *, dark_particles: bool = False) -> np.ndarray:
    """Flat discs + blur + noise: the baseline a generator must beat by far (bright discs on dark, or dark on bright)."""
    rng = np.random.default_rng(seed)
    img = np.where(labels > 0, 60.0, 180.0) if dark_particles else np.where(labels > 0, 150.0, 40.0)
    img = ndi.gaussian_filter(img, 1.0) + rng.normal(0, 12, labels.shape)
    return np.clip(img, 0, 255)


def match_histogram(image: np.ndarray, reference_values: np.ndarray) -> np.ndarray:
    from skimage.exposure import match_histograms

    return np.clip(match_histograms(image.astype(float), reference_values.astype(float).reshape(1, -1)), 0, 255)


def tone_map(image: np.ndarray, labels: np.ndarray, background: float, particles: float) -> np.ndarray:
    """Linear grey-level map taking the image's median background and particle levels to the given ones."""
    image = np.asarray(image, np.float32)
    b, f = np.median(image[labels == 0]), np.median(image[labels > 0])
    return np.clip(background + (image - b) * (particles - background) / max(f - b, 1.0), 0, 255)


def post_process(post: str, images: list, train_values: np.ndarray, train_noise: float, seeds: list,
                 train_pairs: tuple | None = None, tone: dict | None = None) -> list:
    """Apply one post-processing, or several chained with "+" (e.g. "blur+noise"), to uint8 images.

    ``train_pairs`` = (real training images, synthetic images of the same masks): the
    ``calib`` and ``spectral`` steps are fitted on them (``synthesis.finishing.calibration``, ``bench.texture.missing_spectrum``), the
    synthetic ones passed through the chain's earlier steps first. ``tone`` =
    {"labels": the images' masks, "train": [training (background, particle) median
    levels], "own": [each image's real counterpart's levels]} for the ``tone`` steps
    (``tone``: the training images' mean levels; ``tone:sampled``: one training
    image's, drawn per image; ``tone:own``: the held-out real image's own, a diagnostic
    that uses what a generator cannot know).
    """
    from napari_nanogan.synthesis.finishing import add_sem_noise, calibration
    from bench.texture import add_signal_noise, missing_spectrum, shaped_noise, signal_noise_table

    train_real, train_synth = train_pairs if train_pairs is not None else (None, None)
    for step in post.split("+"):
        if step == "none":
            continue
        if step in ("calib", "spectral"):  # grey-level calibration; "spectral" adds the missing power spectrum
            if train_real is None:
                raise SystemExit(f"{step!r} needs the training pairs")
            gain, offset = calibration(train_real, train_synth)

            def calibrate(ims):
                return [np.clip(gain * np.asarray(im, np.float32) + offset, 0, 255) for im in ims]

            images, train_synth = calibrate(images), calibrate(train_synth)
            if step == "spectral":
                psd = missing_spectrum(train_real, train_synth)
                images = [im + shaped_noise(im.shape, psd, seed) for seed, im in zip(seeds, images)]
                train_synth = [im + shaped_noise(im.shape, psd, 10**6 + k) for k, im in enumerate(train_synth)]
            continue
        if step.split(":")[0] == "snoise":  # signal-dependent noise fitted on the training pairs; "snoise:C" correlated
            if train_real is None:
                raise SystemExit(f"{step!r} needs the training pairs")
            corr = float(step.split(":")[1]) if ":" in step else 0.0
            table = signal_noise_table(train_real, train_synth)
            u8 = lambda im: np.clip(np.round(im), 0, 255).astype(np.uint8)  # noqa: E731
            images = [add_signal_noise(u8(im), table, corr, seed) for seed, im in zip(seeds, images)]
            train_synth = [add_signal_noise(u8(im), table, corr, 10**6 + k) for k, im in enumerate(train_synth)]
            continue
        if step.split(":")[0] == "tone":  # mask-aware grey levels: not a fitted step, needs masks
            if tone is None:
                raise SystemExit(f"{step!r} needs the masks")
            kind = step.split(":")[1] if ":" in step else "mean"
            levels = {"mean": [np.mean(tone["train"], axis=0)] * len(images), "own": tone["own"],
                      "sampled": [tone["train"][i] for i in np.random.default_rng(0).integers(len(tone["train"]), size=len(images))]}
            if kind not in levels:
                raise SystemExit(f"unknown tone mapping {step!r}")
            images = [tone_map(im, lab, *lv) for im, lab, lv in zip(images, tone["labels"], levels[kind])]
            continue
        if train_synth is not None:  # keep the fitting set in step with the chain
            train_synth = post_process(step, train_synth, train_values, train_noise,
                                       list(range(10**6, 10**6 + len(train_synth))))
        if step == "hist":
            images = [match_histogram(im, train_values) for im in images]
        elif step == "noise":  # as synthesize() applies it: napari_nanogan.synthesis.finishing.add_sem_noise
            images = [add_sem_noise(np.clip(np.round(im), 0, 255).astype(np.uint8), train_noise, seed)
                      for seed, im in zip(seeds, images)]
        elif step.split(":")[0] == "blur":  # "blur" is sigma 0.7 px, "blur:1.2" another sigma
            sigma = float(step.split(":")[1]) if ":" in step else 0.7
            images = [ndi.gaussian_filter(np.asarray(im, np.float32), sigma) for im in images]
        elif step == "sharpen":
            images = [np.clip(im + 0.5 * (im - ndi.gaussian_filter(np.asarray(im, np.float32), 1.0)), 0, 255)
                      for im in images]
        else:
            raise SystemExit(f"unknown post-processing {step!r}")
    return [np.asarray(im, np.float32) for im in images]


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.synthesis_quality")
    ap.add_argument("--model", default="default")
    ap.add_argument("--segmenter", default="auto", help="segmenter of the cycle check (default: the product's default)")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--dataset", default="bam", choices=["bam", "emps-tem"],
                    help="BAM TiO2 SEM (default), or the EMPS images with dark particles (bright-field TEM) at the "
                         "model's scale, as `nanogan train-gan --dataset emps-tem` learns from them")
    ap.add_argument("--crop", type=int, default=None, help="crop side (default 256 for bam, 128 for emps-tem)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="shift the styles' seeds and the synthetic crops' positions (0-9): rerun with 1, 2, ... "
                         "to see how much FID/KID move with the sampling alone")
    ap.add_argument("--post", default="none,hist,noise,blur,sharpen,blur+noise")
    ap.add_argument("--real-post", default="", help="post-processings to measure on the real training images")
    ap.add_argument("--real-only", action="store_true", help="stop after the real-image entries")
    args = ap.parse_args()
    if not 0 <= args.seed_offset <= 9:
        ap.error("--seed-offset must be 0-9 (styles of different offsets must not overlap)")

    from napari_nanogan.measure import equivalent_diameters, measure_particles
    from napari_nanogan.metrics.segmentation import foreground_scores
    from napari_nanogan.segmentation import load_segmenter, segment
    from napari_nanogan.synthesis import load_generator, synthesize
    from napari_nanogan.synthesis.finishing import finish

    if args.crop is None:
        args.crop = 128 if args.dataset == "emps-tem" else 256

    def load(triples):
        if args.dataset == "emps-tem":
            from napari_nanogan.training.data import bright_field_samples

            return [(s.image.astype(np.float32), s.labels) for s in bright_field_samples(triples)]
        return load_bam(triples)

    split = shared_splits(args.data_root)["emps" if args.dataset == "emps-tem" else "bam"]
    held = load(split["val"] + split["test"])
    train = load(split["train"])
    net = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, args.crop, seed=0)
    result = {"protocol": {"dataset": args.dataset, "crop": args.crop, "n_per_side": args.n, "held_out_images": len(held), "train_images": len(train),
                           "resize": "TF1 bilinear to 299", "channels": "grey x3", "features": "Inception pool3 (2048)"}}
    result["real_vs_real"] = fid_kid(real_eval, random_crops([im for im, _ in train], args.n, args.crop, seed=1), net)
    naive = [naive_render(lab, s, dark_particles=args.dataset == "emps-tem") for s, (_, lab) in enumerate(held)]
    result["naive"] = fid_kid(real_eval, random_crops(naive, args.n, args.crop, seed=2), net)
    if args.real_post:
        train_values = np.concatenate([im.ravel()[::97] for im, _ in train])
        train_noise = float(np.median([noise_level(im) for im, _ in train]))
        for post in args.real_post.split(","):
            imgs = post_process(post, [im for im, _ in train], train_values, train_noise,
                                list(range(2 * 10**6, 2 * 10**6 + len(train))))
            result[f"real_vs_real_{post}"] = fid_kid(real_eval, random_crops(imgs, args.n, args.crop, seed=1), net)
    if args.real_only:
        result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                          text=True).stdout.strip()
        print(json.dumps(result))
        return

    gen = load_generator(args.model, device="cpu")
    seg = load_segmenter(args.segmenter, device="cpu")
    synth, seeds = [], []
    for i, (_, lab) in enumerate(held):
        for s in range(args.seeds):
            seeds.append(1000 * i + 100 * args.seed_offset + s)  # offsets 0-9 never share a style
            synth.append((synthesize(lab, gen, seed=seeds[-1], raw=True).astype(np.float32), lab))
    train_values = np.concatenate([im.ravel()[::97] for im, _ in train])
    train_noise = float(np.median([noise_level(im) for im, _ in train]))
    result["noise_level"] = {"train": round(train_noise, 2),
                             "synthetic": round(float(np.median([noise_level(im) for im, _ in synth])), 2)}
    train_pairs = None
    if any(step.split(":")[0] in ("calib", "spectral", "snoise") for post in args.post.split(",") for step in post.split("+")):
        # fitting set for calib/spectral: the training masks, one style each (never the held-out ones)
        train_pairs = ([im for im, _ in train],
                       [synthesize(lab, gen, seed=10**5 + i, raw=True).astype(np.float32)
                        for i, (_, lab) in enumerate(train)])
    def levels(im, lab):  # median substrate and particle grey levels
        return float(np.median(im[lab == 0])), float(np.median(im[lab > 0]))

    tone = {"labels": [lab for _, lab in synth], "train": [levels(im, lab) for im, lab in train],
            "own": [levels(*held[i // args.seeds]) for i in range(len(synth))]}
    for post in args.post.split(","):
        if post == "checkpoint":  # exactly what synthesize() returns: the checkpoint's own finishing
            imgs = [finish(np.clip(np.round(im), 0, 255).astype(np.uint8), lab, gen, seed).astype(np.float32)
                    for (im, lab), seed in zip(synth, seeds)]  # finishing and learned textures, as synthesize()
            result["checkpoint_postprocess"] = gen.finishing.to_dict()
            result["checkpoint_substrate_texture"] = gen.texture.config.to_dict() if gen.texture is not None else None
            result["checkpoint_particle_texture"] = (gen.particle_texture.config.to_dict()
                                                     if gen.particle_texture is not None else None)
            result[f"generator_{post}"] = fid_kid(real_eval, random_crops(imgs, args.n, args.crop, seed=2 + args.seed_offset), net)
            continue
        imgs = post_process(post, [im for im, _ in synth], train_values, train_noise, seeds, train_pairs, tone)
        result[f"generator_{post}"] = fid_kid(real_eval, random_crops(imgs, args.n, args.crop, seed=2 + args.seed_offset), net)

    dices, d50_true, d50_synth, whole_true, whole_synth, chosen = [], [], [], [], [], []
    for (_, lab), seed in zip(synth[:: args.seeds], seeds[:: args.seeds]):
        im = synthesize(lab, gen, seed=seed)  # what a user gets, with the checkpoint's finishing and textures
        segmented = segment(im, seg, info_bar=None)
        pred = segmented.labels
        chosen.append(segmented.model)
        dices.append(foreground_scores(lab, pred)[0])
        d50_true.append(np.median(measure_particles(lab).columns["ecd_px"]))
        d50_synth.append(np.median(measure_particles(pred).columns["ecd_px"]))
        whole_true.append(equivalent_diameters(lab, min_area=16, whole_only=True))
        whole_synth.append(equivalent_diameters(pred, min_area=16, whole_only=True))
    result["cycle"] = {"segmenter": args.segmenter, "segmenters_used": sorted(set(chosen)),
                       "dice_mean": float(np.mean(dices)), "dice_min": float(np.min(dices)),
                       "ecd_d50_px_masks": float(np.median(d50_true)), "ecd_d50_px_segmented_synthetic": float(np.median(d50_synth)),
                       "ecd_d10_d50_d90_px_whole_masks": [round(float(q), 2) for q in np.percentile(np.concatenate(whole_true), [10, 50, 90])],
                       "ecd_d10_d50_d90_px_whole_segmented_synthetic": [round(float(q), 2) for q in np.percentile(np.concatenate(whole_synth), [10, 50, 90])]}
    mask = held[0][1]
    mask1024 = np.zeros((768, 1024), mask.dtype)
    mask1024[: mask.shape[0], : mask.shape[1]] = mask[:768, :1024]
    synthesize(mask1024, gen, seed=0)
    times = []
    for s in range(3):
        t = time.perf_counter()
        synthesize(mask1024, gen, seed=s)
        times.append(time.perf_counter() - t)
    result["seconds_1024x768"] = float(np.median(times))
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
