"""What the shipped segmenter still gets wrong, staged on images the package makes: a figure and JSON.

    python -m bench.failure_modes [--model auto] [--figure docs/images/failure_modes.png]

The shared data's licence forbids showing its images, so each failure seen on real data
(docs/benchmarks.md, the model cards) is staged on a procedural image with known labels,
segmented as ``nanogan segment`` does (diameter estimated unless typed, info bar detected):

- ``marks``: panel letters, text, a scale bar and an arrow drawn on a crop of the package's
  sample image (``data.distractors``; pixels under them count as background);
- ``small_estimated`` / ``small_typed``: particles of about 8 px, with the diameter
  estimated and typed (both under 12 px: the image is enlarged twice);
- ``grainy_matrix``: particles on a grainy, polycrystalline-looking substrate;
- ``satellites``: spheres of about 110 px with satellites of 10-28 px on and between them (a
  metal powder's look): the estimate follows the spheres and makes the image about 6 times
  smaller (the scale check keeps 4 times), where the satellites are 2-5 px; ``--no-small-pass`` shows it without the finer
  pass that finds them (``segment(..., small_pass=False)``).

Per panel: annotated and segmented particles, precision / recall / F1 at IoU 0.5 (every
particle of 9 pixels of area or more counted), and false particles (segmented particles lying mostly on
annotated background). One fixed seed per panel: an illustration, not a statistic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.data.distractors import draw_distractors
from napari_nanogan.data.layouts import Particle, place
from napari_nanogan.data.procedural import particle_labels, render_sem, sample_image
from napari_nanogan.data.styles import grains as voronoi_grains
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment


def grains(shape: tuple[int, int], rng: np.random.Generator, cell_area: float = 900.0) -> np.ndarray:
    """A zero-mean texture of grains (Voronoi cells of random grey, darker boundaries), as a polycrystalline matrix."""
    grain, edges = voronoi_grains(shape, rng, cell_area)
    level = rng.normal(0, 1, int(grain.max()) + 1)
    return (level[grain] - 1.5 * edges).astype(np.float32)


def satellite_layout(shape: tuple[int, int], rng: np.random.Generator, big: float = 110.0,
                     small: tuple[float, float] = (10.0, 28.0), n_big: int = 14, per: int = 5,
                     free: int = 10) -> np.ndarray:
    """Instance labels of large spheres, each with ``per`` satellites on its outline, and ``free`` satellites between them."""
    h, w = shape
    particles = []
    for _ in range(n_big):
        d = big * float(np.exp(rng.normal(0, 0.25)))
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        particles.append(Particle(cy, cx, d, float(rng.uniform(0.85, 1.0)), 0, float(rng.uniform(0, np.pi))))
        for _ in range(per):
            s, angle = rng.uniform(*small), rng.uniform(0, 2 * np.pi)
            r = d / 2 + s / 2 * rng.uniform(0.7, 1.05)
            particles.append(Particle(cy + np.sin(angle) * r, cx + np.cos(angle) * r, s, float(rng.uniform(0.8, 1.0)), 0, 0.0))
    for _ in range(free):
        particles.append(Particle(rng.uniform(0, h), rng.uniform(0, w), rng.uniform(*small), 0.9, 0, 0.0))
    particles.sort(key=lambda p: -p.diameter)  # the spheres first: a satellite keeps only what they leave
    return place(shape, particles, gap=True, overlap=0.0)


def stage(name: str):
    """(image, truth labels, segment() keyword arguments) of one panel."""
    rng = np.random.default_rng(7)
    if name == "marks":
        image, labels = sample_image()
        image, labels = image[:384, :512], labels[:384, :512]
        for _ in range(6):  # a few kinds of marks
            image, labels, _ = draw_distractors(image, labels, rng)
        return image, labels, {"diameter": "auto"}
    if name.startswith("small"):
        labels = particle_labels((384, 512), n_particles=220, mean_diameter=8.0, seed=3)
        image = render_sem(labels, seed=4)
        return image, labels, {"diameter": "auto" if name == "small_estimated" else 8.0}
    if name == "grainy_matrix":
        labels = particle_labels((384, 512), n_particles=60, mean_diameter=20.0, seed=5)
        image = render_sem(labels, seed=6).astype(np.float32)
        image += np.where(labels > 0, 0, 18 * grains(labels.shape, rng))
        return np.clip(image, 0, 255).astype(np.uint8), labels, {"diameter": "auto"}
    if name == "satellites":
        labels = satellite_layout((768, 1024), rng)
        return render_sem(labels, seed=8), labels, {"diameter": "auto"}
    raise ValueError(name)


PANELS = {"marks": "figure marks on the sample image", "small_estimated": "8-px particles, diameter estimated",
          "small_typed": "8-px particles, diameter typed (enlarged twice)", "grainy_matrix": "particles on a grainy matrix",
          "satellites": "spheres with satellites"}


def false_particles(pred: np.ndarray, truth: np.ndarray) -> int:
    """Segmented particles with at least half their pixels on annotated background."""
    n = int(pred.max())
    if n == 0:
        return 0
    area = np.bincount(pred.ravel(), minlength=n + 1)[1:]
    on_background = np.bincount(pred.ravel(), (truth == 0).ravel(), minlength=n + 1)[1:]
    return int(((on_background >= 0.5 * area) & (area > 0)).sum())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.failure_modes")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--figure", default=None, help="write the overlays here (PNG)")
    ap.add_argument("--no-small-pass", action="store_true", help="segment(..., small_pass=False)")
    args = ap.parse_args(argv)
    model = load_segmenter(args.model)
    results, pictures = {}, []
    for name, title in PANELS.items():
        image, truth, kwargs = stage(name)
        result = segment(image, model, small_pass=not args.no_small_pass, **kwargs)
        scores = summarize([(truth, result.labels)], min_area=9)
        results[name] = {"title": title, "particles": int(len(np.unique(truth)) - 1), "segmented": result.count,
                         "false_particles": false_particles(result.labels, truth),
                         "diameter_px": None if result.diameter_px is None else round(result.diameter_px, 1),
                         **{k: round(scores[k], 3) for k in ("precision", "recall", "f1")}}
        pictures.append((title, image, result.labels, results[name]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"model": args.model, "small_pass": not args.no_small_pass, "panels": results, "commit": commit}
    print(json.dumps(out))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from napari_nanogan.overlay import overlay

        fig, axes = plt.subplots(2, 3, figsize=(15, 7.8))
        for ax in axes.ravel()[len(pictures):]:
            ax.axis("off")
        for ax, (title, image, labels, r) in zip(axes.ravel(), pictures):
            ax.imshow(overlay(image, labels))
            ax.set_title(f"{title}\n{r['segmented']} found, {r['particles']} drawn; F1 {r['f1']:.2f}, "
                         f"{r['false_particles']} false", fontsize=9)
            ax.axis("off")
        fig.suptitle(f"What `{args.model}` still gets wrong (procedural images; every particle outlined)", fontsize=10)
        fig.tight_layout()
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=90)
    return out


if __name__ == "__main__":
    main()
