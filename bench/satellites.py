"""Small particles beside large ones, over many drawn images: how many satellites the segmenter finds.

    python -m bench.satellites [--model auto] [--seeds 0-12] [--no-small-pass]     # seeds A-B: A to B-1

``bench.failure_modes``' ``satellites`` panel is one image, an illustration: a model that finds 27
of its 34 particles and one that finds 31 may not differ beyond that image. Here the same kind
of image (a metal powder's look: large spheres, each with satellites on its outline, and free
satellites between them; ``bench.failure_modes.satellite_layout``, the package's procedural SEM
rendering) is drawn once per seed, its spheres of about 70, 110 or 160 px in turn (seed modulo
3) and its satellites 0.09-0.25 of the spheres' size, and segmented as ``nanogan segment``
does (diameter estimated: the image is shrunk for the spheres, and the finer pass adds the
satellites).

Pooled over the seeds, at IoU 0.5 (particles of 9 px of area or more): satellites found of
those drawn, spheres found, precision, F1, false particles (segmented particles lying mostly
on annotated background), and the spread of the satellites found per image. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import numpy as np

from bench.failure_modes import false_particles, satellite_layout
from napari_nanogan.data.procedural import render_sem
from napari_nanogan.segmentation import load_segmenter, segment

SPHERES_PX = (70.0, 110.0, 160.0)
SATELLITE_SHARE = (0.09, 0.25)
SHAPE = (768, 1024)


def draw(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, instance labels, whether each label 1..n is a satellite) of one seed."""
    rng = np.random.default_rng(1000 + seed)
    big = SPHERES_PX[seed % len(SPHERES_PX)]
    n_big = int(round(14 * (110.0 / big) ** 2))
    labels = satellite_layout(SHAPE, rng, big=big, small=(big * SATELLITE_SHARE[0], big * SATELLITE_SHARE[1]),
                              n_big=n_big, per=5, free=10)
    area = np.bincount(labels.ravel())[1:]
    diameter = np.sqrt(4 * area / np.pi)
    return render_sem(labels, seed=seed), labels, diameter < 0.45 * big


def found_at(truth: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Whether each truth label 1..n has a segmented particle of IoU >= ``threshold`` (above 0.5 a match is unique)."""
    n_true, n_pred = int(truth.max()), int(pred.max())
    inter = np.bincount(truth.ravel().astype(np.int64) * (n_pred + 1) + pred.ravel(),
                        minlength=(n_true + 1) * (n_pred + 1)).reshape(n_true + 1, n_pred + 1)
    area_t, area_p = inter.sum(1), inter.sum(0)
    iou = inter / np.maximum(area_t[:, None] + area_p[None, :] - inter, 1)
    return (iou[1:, 1:] >= threshold).any(1) if n_pred else np.zeros(n_true, bool)


def seeds_arg(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi))
    return [int(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.satellites", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="auto")
    ap.add_argument("--seeds", default="0-12", help="'A-B' (B excluded) or a comma list (default: 0-12)")
    ap.add_argument("--no-small-pass", action="store_true", help="segment(..., small_pass=False)")
    args = ap.parse_args(argv)
    model = load_segmenter(args.model)
    totals = dict.fromkeys(("satellites", "satellites_found", "spheres", "spheres_found", "segmented",
                            "matched", "false_particles"), 0)
    per_image = []
    for seed in seeds_arg(args.seeds):
        image, truth, is_satellite = draw(seed)
        result = segment(image, model, diameter="auto", small_pass=not args.no_small_pass)
        area = np.bincount(result.labels.ravel())
        pred = np.where(area[result.labels] >= 9, result.labels, 0)  # particles of 9 px or more, as counted
        found = found_at(truth, pred)
        counted = np.bincount(truth.ravel(), minlength=int(truth.max()) + 1)[1:] >= 9
        row = {"seed": seed, "spheres_px": SPHERES_PX[seed % len(SPHERES_PX)],
               "satellites": int((is_satellite & counted).sum()),
               "satellites_found": int((found & is_satellite & counted).sum()),
               "spheres": int((~is_satellite & counted).sum()),
               "spheres_found": int((found & ~is_satellite & counted).sum()),
               "segmented": int((area[1:] >= 9).sum()),
               "matched": int((found & counted).sum()),
               "false_particles": false_particles(pred, truth)}
        for key in totals:
            totals[key] += row[key]
        per_image.append(row)
    recall = (totals["satellites_found"] + totals["spheres_found"]) / max(totals["satellites"] + totals["spheres"], 1)
    precision = totals["matched"] / max(totals["segmented"], 1)
    share = [r["satellites_found"] / max(r["satellites"], 1) for r in per_image]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"model": args.model, "seeds": args.seeds, "small_pass": not args.no_small_pass, **totals,
           "satellite_recall": round(totals["satellites_found"] / max(totals["satellites"], 1), 4),
           "sphere_recall": round(totals["spheres_found"] / max(totals["spheres"], 1), 4),
           "precision": round(precision, 4), "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4),
           "satellite_recall_per_image": {"min": round(min(share), 3), "median": round(float(np.median(share)), 3),
                                          "max": round(max(share), 3)},
           "per_image": per_image, "commit": commit}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
