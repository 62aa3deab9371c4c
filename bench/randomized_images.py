"""Images of microscopes and particles the models never saw, drawn by the domain-randomised renderer; prints JSON.

    python -m bench.randomized_images [--model default] [--seeds 0-80] [--no-scale-check] [--annotated-diameter]
                                      [--figure docs/images/randomized_images.png] [--baseline]

Each seed draws one 512 x 512 pair with :func:`napari_nanogan.data.randomized.random_pair`
(SEM, bright-field TEM or HAADF styles; round, rod, cube, triangle, hexagon, polygon and
mixed shapes; sparse, scattered, crowded, packed and satellite arrangements; median
diameters of 8-80 px; noise, blur, drift, uneven illumination, JPEG; no marks). No
shipped model is trained on these pairs, so they stand in for unfamiliar images: a check
of breadth, not of any real data set. Each image is segmented with ``--model``, its diameter
estimated, as ``nanogan segment --model default`` does (``nanogan segment``'s own default is
``auto``), or with ``--annotated-diameter`` at its annotated median diameter.

Reported: instance F1 at IoU 0.5 (particles of 9 px² or more), pooled over the images and
the mean per image by style, arrangement and shape family; how well the per-particle confidence
predicts that a particle is real (calibration error, AUC); the diameter estimate's median
|relative error| and share within 1.5 times; how many images were enlarged, shrunk, or
kept at their own scale by the scale check. ``--figure``: eight of the images, from the
worst F1 to the best, the drawn particles outlined in green and those found in magenta.
``--baseline``: per style (SEM, bright-field TEM, HAADF: the "sources"), the pooled F1 of the
segmenter and of the classical Otsu + watershed tuned on that style's images themselves
(the best of ``bench.classical``'s grid on them), and the segmenter's margin.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.classical import tuned_classical
from napari_nanogan.data.randomized import random_pair
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment
from napari_nanogan.training.confidence import matched, reliability
from napari_nanogan.training.loop import machine_description

SHAPE = (512, 512)
DIAMETERS = (8.0, 80.0)


def seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last)) if last else range(int(first), int(first) + 1)


def draw(seed: int):
    """(image, labels, what was drawn) of one seed: the same pair on every machine."""
    return random_pair(SHAPE, np.random.default_rng(1000 + seed), min_diameter=DIAMETERS[0],
                       max_diameter=DIAMETERS[1], distractor_prob=0.0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.randomized_images", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--seeds", default="0-80", help="a range FIRST-END (END excluded), or one seed")
    ap.add_argument("--no-scale-check", action="store_true", help="segment(..., scale_check=False)")
    ap.add_argument("--no-polarity-check", action="store_true", help="segment(..., polarity_check=False)")
    ap.add_argument("--annotated-diameter", action="store_true",
                    help="segment each image at its annotated median diameter, not the estimate")
    ap.add_argument("--figure", help="write eight of the images, worst to best F1, with both outlines (PNG)")
    ap.add_argument("--baseline", action="store_true",
                    help="also score Otsu + watershed, tuned per style on the images scored, and the margin over it")
    args = ap.parse_args(argv)
    model = load_segmenter(args.model)
    rows, pairs, pictures, confidence, images = [], [], [], ([], []), []
    for seed in seed_range(args.seeds):
        image, labels, info = draw(seed)
        if not labels.max():
            continue
        truth = median_diameter(labels)
        diameter = truth if args.annotated_diameter else "auto"
        result = segment(image, model, diameter=diameter, info_bar=None, scale_check=not args.no_scale_check,
                         polarity_check=not args.no_polarity_check)
        score = summarize([(labels, result.labels)], min_area=9)
        pairs.append((labels, result.labels))
        if result.confidence is not None and result.count:
            present = np.unique(result.labels)
            present = present[present > 0]
            confidence[0].append(result.confidence[present - 1])
            confidence[1].append(matched(labels, result.labels)[present - 1])
        if args.figure:
            pictures.append((image, labels, result.labels))
        if args.baseline:
            images.append(image)
        rows.append({"seed": seed, "style": info["style"], "arrangement": info["arrangement"],
                     "family": info["family"], "diameter_px": round(truth, 1),
                     "estimate_px": None if result.diameter_px is None or not result.diameter_estimated
                     else round(result.diameter_px, 1),
                     "scale": round(result.scale, 3), "scale_checked": result.estimate_scale is not None,
                     "inverted": result.inverted,
                     "f1": round(score["f1"], 4)})
    pooled = summarize(pairs, min_area=9)
    by = {key: _mean_f1_by(rows, key) for key in ("style", "arrangement", "family")}
    ratios = np.array([r["estimate_px"] / r["diameter_px"] for r in rows if r["estimate_px"]])
    result = {
        "model": args.model, "seeds": args.seeds, "images": len(rows),
        "diameter": "annotated median" if args.annotated_diameter else "estimated",
        "scale_check": not args.no_scale_check, "polarity_check": not args.no_polarity_check,
        "pooled": {k: round(pooled[k], 4) for k in ("precision", "recall", "f1", "dice")},
        "mean_f1_per_image": round(float(np.mean([r["f1"] for r in rows])), 4),
        "mean_f1_by": by,
        "estimate": None if not ratios.size else {
            "median_abs_error": round(float(np.median(np.abs(ratios - 1))), 4),
            "within_1.5x": round(float(np.mean((ratios >= 1 / 1.5) & (ratios <= 1.5))), 4)},
        "confidence": _confidence(*confidence),
        "enlarged": sum(r["scale"] > 1 for r in rows), "shrunk": sum(r["scale"] < 1 for r in rows),
        "scale_checked": sum(r["scale_checked"] for r in rows), "inverted": sum(r["inverted"] for r in rows),
        "by_style_vs_baseline": _versus_baseline(rows, pairs, images) if args.baseline else None,
        "per_image": rows,
        "machine": machine_description(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    print(json.dumps(result))
    if args.figure:
        figure(args.figure, rows, pictures, f"`{args.model}` on domain-randomised images (seeds {args.seeds}), "
               f"diameter {result['diameter']}: drawn particles green, found magenta")
    return result


def figure(path: str, rows: list[dict], pictures: list[tuple], title: str, count: int = 8) -> None:
    """``count`` of the images at evenly spaced ranks of F1, worst first, with the drawn and found outlines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    order = np.argsort([r["f1"] for r in rows], kind="stable")
    picks = order[np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))]
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.6))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), picks):
        (image, truth, found), row = pictures[i], rows[i]
        grey = np.repeat(image[..., None], 3, axis=-1).astype(np.uint8)
        grey[find_boundaries(truth, mode="inner")] = (0, 220, 0)
        grey[find_boundaries(found, mode="inner")] = (255, 0, 255)
        ax.imshow(grey)
        ax.set_title(f"seed {row['seed']}: {row['style']}, {row['family']}, {row['arrangement']}, "
                     f"{row['diameter_px']:.0f} px\nF1 {row['f1']:.2f}, {int(found.max())} found, "
                     f"{int(truth.max())} drawn", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def _confidence(values: list[np.ndarray], real: list[np.ndarray]) -> dict | None:
    """Is the per-particle confidence a probability on unfamiliar images? Its reliability (expected calibration
    error, Brier score, AUC) against "matches a drawn particle at IoU 0.5", and the share real above 0.5 and 0.8."""
    if not values:
        return None
    p, y = np.concatenate(values), np.concatenate(real)
    out = reliability(p, y)
    for level in (0.5, 0.8):
        above = p >= level
        out[f"real_share_at_or_above_{level}"] = round(float(y[above].mean()), 4) if above.any() else None
        out[f"particles_at_or_above_{level}"] = int(above.sum())
    return out


def _versus_baseline(rows: list[dict], pairs: list[tuple], images: list[np.ndarray]) -> dict:
    """Per style and pooled over all: the segmenter's pooled F1, the tuned classical baseline's, and the margin."""
    out, base_pairs = {}, []
    for style in sorted({r["style"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["style"] == style]
        base = tuned_classical([images[i] for i in idx], [pairs[i][0] for i in idx])
        base_pairs += [(pairs[i][0], lab) for i, lab in zip(idx, base["labels"])]
        f1 = round(float(summarize([pairs[i] for i in idx], min_area=9)["f1"]), 4)
        out[style] = {"images": len(idx), "f1": f1, "baseline_f1": base["f1"], "baseline_config": base["config"],
                      "margin": round(f1 - base["f1"], 4)}
    f1 = round(float(summarize(pairs, min_area=9)["f1"]), 4)
    base_f1 = round(float(summarize(base_pairs, min_area=9)["f1"]), 4)
    out["pooled"] = {"images": len(pairs), "f1": f1, "baseline_f1": base_f1, "margin": round(f1 - base_f1, 4)}
    return out


def _mean_f1_by(rows: list[dict], key: str) -> dict:
    """Mean F1 per image for each value of ``key`` (style, arrangement or family)."""
    groups = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row["f1"])
    return {name: round(float(np.mean(values)), 3) for name, values in sorted(groups.items())}


if __name__ == "__main__":
    main()
