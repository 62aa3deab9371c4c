"""How a network's particles, and its confidence in them, change with the scale and the grey levels; prints JSON.

    python -m bench.scale_study [--model default] [--images randomized:0-80,emps:val,bam:train]
                                [--around kept|annotated] [--steps=-1,1] [--invert] [--more 1.2] [--margin 0.04]
                                [--no-scale-check] [--no-polarity-check] [--own-scale-only]

The study behind ``segment()``'s scale and polarity checks and their thresholds
(``config.SCALE_*``, ``config.POLARITY_*``), and behind rules measured and not adopted.
Each image is segmented as ``nanogan segment --model MODEL`` does (diameter estimated, every
check on unless ``--no-scale-check`` or ``--no-polarity-check``: the path a rule was set
against), then once per pass with the same network and none of the checks
(:func:`~napari_nanogan.segmentation.pipeline.labels_at`): at ``config.SCALE_STEP ** k``
times the scale kept (``--around kept``) or the annotated median diameter's scale
(``--around annotated``) for each k of ``--steps`` (within 1/8 and 2 times the image's
size), and with ``--invert`` at the scale kept with its grey levels inverted. Per image
and pass: instance F1 at IoU 0.5, the particle count and the mean confidence. The passes
see the grey levels the shipped labels came from (inverted where the polarity check kept
the image inverted; ``--invert`` then gives the image as it is).

The summary judges one kind of rule per pass: "take the pass where it finds at least
``--more`` times as many particles, of a mean confidence at least ``--margin`` higher"
(rounded to 4 places, on every image: the checks in ``segment()`` also ask for the network
to be unsure first, and for a margin strictly exceeded).
Per pass: the images the rule would switch, their F1 gained in sum, those that lose,
and the mean F1 per image of the shipped path, of the pass, and of the best of all
passes for each image (what a perfect rule would reach).

Images: ``randomized:FIRST-END`` (``bench.randomized_images``' seeds; particles of 9 px²
or more count), ``emps:SPLIT`` and ``bam:SPLIT`` (``../shared/data``, split by paper and by
field; the info bar excluded; particles of 16 px² or more count, as ``bench.evaluate``).
Images without an annotated particle are left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from napari_nanogan.config import MAX_ENLARGE, MIN_RESIZE, SCALE_STEP
from napari_nanogan.io.images import as_grey
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation import load_segmenter, segment
from napari_nanogan.segmentation.pipeline import labels_at, network_of
from napari_nanogan.segmentation.segmenter import passes_only
from napari_nanogan.segmentation.polarity import inverted
from napari_nanogan.training.loop import machine_description

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def images(spec: str, data_root: Path):
    """(name, image, truth labels, specimen rows or None, min_area) for one ``--images`` entry."""
    kind, _, which = spec.partition(":")
    if kind == "randomized":
        from bench.randomized_images import draw, seed_range

        for seed in seed_range(which):
            image, labels, info = draw(seed)
            if labels.max():
                yield f"{seed}-{info['style']}-{info['family']}-{info['arrangement']}", image, labels, None, 9
        return
    if kind not in ("emps", "bam") or which not in ("train", "val", "test"):
        raise SystemExit(f"unknown --images entry {spec!r}: randomized:FIRST-END, emps:SPLIT or bam:SPLIT")
    from bench.evaluate import truth_and_rows
    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.masks import read_mask

    for stem, image_path, mask_path in shared_splits(data_root)[kind][which]:
        image, _ = read_image(image_path)
        truth, rows = truth_and_rows(kind, image, read_mask(mask_path))
        if truth.max():
            yield f"{kind}/{stem}", image, truth, rows, 16


def study(segmenter, name, image, truth, rows, min_area, *, around: str, steps: list[int], invert: bool,
          checks: dict, own_scale_only: bool = False) -> dict | None:
    """One image's row: the shipped path's scores, then each pass's (None: not at its own scale, and only those
    were asked for)."""
    result = segment(image, segmenter, diameter="auto", info_bar=None if rows is None else "auto", **checks)
    if own_scale_only and result.scale != 1.0:
        return None
    rows = slice(None) if rows is None else rows  # (the rows the truth covers)
    specimen = result.info_bar.specimen_rows if result.info_bar is not None else slice(None)
    grey = as_grey(image)
    seen = inverted(grey[specimen]) if result.inverted else grey[specimen]  # the grey levels the labels came from

    def scored(labels, confidence):
        full = np.zeros(grey.shape, labels.dtype)
        full[specimen] = labels
        return _scores(truth, full[rows], confidence, min_area)

    row = {"name": name, "scale": round(result.scale, 4), "inverted": result.inverted, "small_added": result.small_added,
           "diameter_px": round(median_diameter(truth), 2),
           "estimate_px": None if result.diameter_px is None else round(result.diameter_px, 2),
           "shipped": _scores(truth, result.labels[rows], result.confidence, min_area)}
    network = network_of(segmenter, result.model)
    base = result.scale if around == "kept" else network.diameter_px / max(row["diameter_px"], 1.0)
    passes = {}
    for k in steps:
        factor = float(np.clip(base * SCALE_STEP**k, MIN_RESIZE, MAX_ENLARGE))
        passes[f"{k:+d}"] = {"scale": round(factor, 4), **scored(*labels_at(seen, network, factor)[:2])}
    if invert:  # the other polarity: the image inverted, or as it is where the kept labels came from it inverted
        passes["inverted"] = {"scale": row["scale"], **scored(*labels_at(inverted(seen), network, result.scale)[:2])}
    row["passes"] = passes
    return row


def _scores(truth, labels, confidence, min_area) -> dict:
    present = np.unique(labels)
    present = present[present > 0]
    mean = float(np.mean(confidence[present - 1])) if present.size and confidence is not None else None
    return {"f1": round(summarize([(truth, labels)], min_area=min_area)["f1"], 4), "count": int(present.size),
            "confidence": None if mean is None else round(mean, 4)}


def rule_summary(rows: list[dict], *, more: float, margin: float) -> dict:
    """Per pass: what "switch where MORE times as many particles, MARGIN surer" would do against the shipped path."""
    out = {}
    for key in rows[0]["passes"] if rows else ():
        switched = []
        for r in rows:
            was, other = r["shipped"], r["passes"][key]
            if was["count"] and other["confidence"] is not None and other["count"] >= more * was["count"] \
                    and other["confidence"] - (was["confidence"] or 0.0) >= margin:
                switched.append((r["name"], round(other["f1"] - was["f1"], 4)))
        out[key] = {"switched": len(switched), "f1_gained_in_sum": round(sum(g for _, g in switched), 4),
                    "losers": [s for s in switched if s[1] < 0],
                    "mean_f1_of_the_pass": round(float(np.mean([r["passes"][key]["f1"] for r in rows])), 4)}
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.scale_study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--images", default="randomized:0-80", help="comma-separated: randomized:FIRST-END, emps:SPLIT, "
                                                                "bam:SPLIT")
    ap.add_argument("--data-root", type=Path, default=DATA_ROOT)
    ap.add_argument("--around", choices=["kept", "annotated"], default="kept",
                    help="the scale the steps are taken from: the one segment() kept, or the annotated diameter's")
    ap.add_argument("--steps", default="-1,1", help="comma-separated whole steps of config.SCALE_STEP (0: the base "
                                                     "scale itself, one pass without any check)")
    ap.add_argument("--invert", action="store_true", help="also a pass at the scale kept with the grey levels inverted")
    ap.add_argument("--no-scale-check", action="store_true", help="the base path without the scale check")
    ap.add_argument("--no-polarity-check", action="store_true", help="the base path without the polarity check")
    ap.add_argument("--own-scale-only", action="store_true",
                    help="study only the images the base path leaves at their own scale")
    ap.add_argument("--more", type=float, default=1.2, help="the summary's rule: at least this many times the particles")
    ap.add_argument("--margin", type=float, default=0.04, help="the summary's rule: a mean confidence this much higher")
    args = ap.parse_args(argv)
    segmenter = passes_only(load_segmenter(args.model))  # the confidence the checks compare, not a final model's
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    checks = {"scale_check": not args.no_scale_check, "polarity_check": not args.no_polarity_check}
    rows = [study(segmenter, *entry, around=args.around, steps=steps, invert=args.invert, checks=checks,
                  own_scale_only=args.own_scale_only)
            for spec in args.images.split(",") for entry in images(spec.strip(), args.data_root)]
    rows = [row for row in rows if row is not None]
    best = [max([r["shipped"]["f1"]] + [p["f1"] for p in r["passes"].values()]) for r in rows]
    result = {
        "model": args.model, "images": args.images, "count": len(rows), "around": args.around, "steps": steps,
        **checks, "own_scale_only": args.own_scale_only,
        "rule": {"more": args.more, "margin": args.margin},
        "mean_f1_shipped": round(float(np.mean([r["shipped"]["f1"] for r in rows])), 4) if rows else None,
        "mean_f1_best_pass": round(float(np.mean(best)), 4) if rows else None,
        "passes": rule_summary(rows, more=args.more, margin=args.margin),
        "per_image": rows,
        "machine": machine_description(),
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                 text=True).stdout.strip(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
