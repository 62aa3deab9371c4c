"""Particles on a textured matrix: how many false particles the segmenter finds in the texture.

    python -m bench.textured_matrix [--model auto] [--seeds 0,1,2] [--figure PATH] [--baseline]

Carbides in a steel, precipitates in an alloy, particles on a polycrystalline film: the
matrix around the particles has structure at the particles' own scale, and a segmenter
that learned from flat or finely grainy substrates labels it. The shared data hold no such
image (and their licence forbids showing one), so the matrix is staged: the package's
procedural SEM particles (bright, ``data.procedural.render_sem``, the background lifted so
that the texture is not clipped at black) of 10 or 20 px on three textures, each at three
strengths (standard deviation 0.1, 0.2 and 0.35 of the particles' contrast to the matrix):

- ``grains``: Voronoi grains of 20 px, each of its own grey level, with dark boundaries
  (``bench.failure_modes.grains``, as its ``grainy_matrix`` panel, stronger);
- ``lamellae``: grains of 80 px, 60 % of them striped with a period of 5-9 px (pearlite,
  martensite laths);
- ``blobs``: band-pass noise of the particles' own size, smooth and round: no boundaries
  and no stripes, a texture unlike what ``nanogan train --matrix`` draws.

``grains`` and ``lamellae`` lie within what ``nanogan train --matrix`` draws (cells of
0.7-4 particle diameters, stripes of 3-10 px): for a model trained with it, those rows are
seen kinds and ``blobs`` the unseen one.

Segmented as ``nanogan segment`` does (diameter estimated, where the model has a size
model). Per texture and strength, over
the seeds: instance F1 at IoU 0.5 (particles of 9 px of area or more) and false particles
per image (segmented particles lying mostly on the matrix). ``--baseline`` adds the classical
Otsu + watershed, tuned per texture and strength on the images it is scored on
(``bench.classical``), and the segmenter's F1 margin over it. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np
from scipy import ndimage as ndi

from bench.classical import tuned_classical
from bench.failure_modes import false_particles, grains
from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.data.styles import grains as voronoi_grains
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import can_estimate_diameter, load_segmenter, segment

TEXTURES = ("grains", "lamellae", "blobs")
STRENGTHS = (0.1, 0.2, 0.35)
DIAMETERS = (10.0, 20.0)
SHAPE = (384, 512)


def texture(kind: str, shape: tuple[int, int], rng: np.random.Generator, diameter: float) -> np.ndarray:
    """A zero-mean, unit-SD matrix texture of ``kind``."""
    if kind == "grains":
        t = grains(shape, rng, cell_area=400.0)
    elif kind == "lamellae":
        grain, edges = voronoi_grains(shape, rng, 6400.0)
        cells = int(grain.max()) + 1
        yy, xx = np.indices(shape, dtype=np.float32)
        angle, period = rng.uniform(0, np.pi, cells)[grain], rng.uniform(5, 9, cells)[grain]
        stripes = np.sin(2 * np.pi * (yy * np.sin(angle) + xx * np.cos(angle)) / period)
        t = np.where((rng.random(cells) < 0.6)[grain], stripes, 0) + 0.7 * rng.normal(0, 1, cells)[grain] - 1.5 * edges
    elif kind == "blobs":
        noise = rng.standard_normal(shape).astype(np.float32)
        t = ndi.gaussian_filter(noise, diameter / 4) - ndi.gaussian_filter(noise, diameter)
    else:
        raise ValueError(kind)
    t = t - t.mean()
    return (t / t.std()).astype(np.float32)


def stage(kind: str, strength: float, diameter: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 image, truth labels): bright particles on a matrix of ``kind`` at ``strength`` of their contrast."""
    labels = particle_labels(SHAPE, n_particles=int(80 * 20 / diameter), mean_diameter=diameter, seed=100 + seed)
    image = 60 + 0.75 * render_sem(labels, seed=200 + seed).astype(np.float32)  # room below the matrix: no clipping
    contrast = float(np.median(image[labels > 0]) - np.median(image[labels == 0]))
    rng = np.random.default_rng(300 + seed)
    image += np.where(labels > 0, 0, strength * contrast * texture(kind, SHAPE, rng, diameter))
    return np.clip(image, 0, 255).astype(np.uint8), labels


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.textured_matrix")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds: one image per seed, texture, "
                    "strength and particle size")
    ap.add_argument("--figure", default=None, help="write one overlay per texture at strength 0.2 here (PNG)")
    ap.add_argument("--baseline", action="store_true",
                    help="also score Otsu + watershed, tuned per texture and strength on the images scored")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    model = load_segmenter(args.model)
    diameter_arg = "auto" if can_estimate_diameter(model) else None  # as `nanogan segment` does
    rows, pictures = {}, []
    for kind in TEXTURES:
        for strength in STRENGTHS:
            pairs, false, images = [], [], []
            for diameter in DIAMETERS:
                for seed in seeds:
                    image, truth = stage(kind, strength, diameter, seed)
                    labels = segment(image, model, diameter=diameter_arg).labels
                    pairs.append((truth, labels))
                    images.append(image)
                    false.append(false_particles(labels, truth))
                    if args.figure and strength == 0.2 and diameter == DIAMETERS[0] and seed == seeds[0]:
                        pictures.append((kind, image, labels, false[-1]))
            scores = summarize(pairs, min_area=9)
            rows[f"{kind}@{strength}"] = {"f1": round(scores["f1"], 3), "precision": round(scores["precision"], 3),
                                          "recall": round(scores["recall"], 3),
                                          "false_per_image": round(float(np.mean(false)), 1), "images": len(pairs)}
            if args.baseline:
                base = tuned_classical(images, [t for t, _ in pairs])
                rows[f"{kind}@{strength}"]["baseline"] = {
                    "f1": base["f1"], "config": base["config"],
                    "false_per_image": round(float(np.mean([false_particles(lab, t) for lab, (t, _) in
                                                            zip(base["labels"], pairs)])), 1)}
                rows[f"{kind}@{strength}"]["f1_margin"] = round(scores["f1"] - base["f1"], 3)
    f1 = [r["f1"] for r in rows.values()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"model": args.model, "seeds": seeds, "rows": rows, "mean_f1": round(float(np.mean(f1)), 3),
           **({"baseline_mean_f1": round(float(np.mean([r["baseline"]["f1"] for r in rows.values()])), 3),
               "min_f1_margin": min(r["f1_margin"] for r in rows.values())} if args.baseline else {}),
           "mean_false_per_image": round(float(np.mean([r["false_per_image"] for r in rows.values()])), 1),
           "commit": commit}
    print(json.dumps(out))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from napari_nanogan.overlay import overlay

        fig, axes = plt.subplots(1, len(pictures), figsize=(5 * len(pictures), 4.2))
        for ax, (kind, image, labels, n_false) in zip(np.atleast_1d(axes), pictures):
            ax.imshow(overlay(image, labels))
            ax.set_title(f"{kind}, strength 0.2: {n_false} false particles")
            ax.axis("off")
        fig.suptitle(f"{args.model}: bright 10-px particles on a textured matrix")
        fig.tight_layout(rect=(0, 0, 1, 0.92))
        fig.savefig(args.figure, dpi=80)
    return out


if __name__ == "__main__":
    main()
