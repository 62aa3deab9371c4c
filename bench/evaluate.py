"""Segmentation quality on the project's held-out test split of ../shared/data; prints JSON.

    python -m bench.evaluate [--model default] [--data-root ../shared/data] [--split test]
                             [--baseline] [--save-dir DIR] [--check-reference]
                             [--diameter-from-truth FACTOR | --auto-diameter] [--invert] [--no-scale-check]

Per data set (BAM SEM, EMPS): mean per-image foreground Dice and IoU; instance
precision, recall, F1 at IoU 0.5 (one-to-one matching) and mean matched IoU; the same
per kind of image (``by_kind``: particles darker or brighter than their background, and
the annotated median particle diameter's range) with the diameter estimates' errors;
D10/D50/D90 of whole particles against the annotation's; and the reliability of the
per-particle confidence (ECE, AUC of "matches an annotated particle at IoU 0.5").
Images go through the same path a user's file does (read, info bar detected and
excluded, tiled segmentation). With ``--baseline``, a classical Otsu + watershed
baseline is tuned on the *training* split (grid search) and scored on the same
test images. With ``--check-reference``, the predictions are also scored by
``../shared/tools/evalseg.py`` and both results are printed. With ``--invert``, every
image's grey levels are mirrored within its own range before segmenting (bright particles
made dark and the reverse): the same particles in the other polarity, a check of how
much the model leans on brightness rather than shape (the kinds in ``by_kind`` are then
those of the inverted images: inverted BAM fields count as dark particles).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_nanogan.config import ClassicalConfig
from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.io.images import read_image, write_labels
from napari_nanogan.io.infobar import detect_info_bar
from napari_nanogan.io.masks import instance_labels, read_mask
from napari_nanogan.measure import median_diameter
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.segmentation.classical import otsu_watershed
from napari_nanogan.segmentation.polarity import inverted


def truth_and_rows(key, image, mask):
    if key == "bam":
        bar = detect_info_bar(image)
        rows = slice(0, bar.start) if bar else slice(None)
        return instance_labels(mask[rows]), rows
    return instance_labels(mask), slice(None)


SIZE_BINS = ((0, 12, "under 12 px"), (12, 40, "12-40 px"), (40, 120, "40-120 px"), (120, np.inf, "120 px and over"))


def elongated(truth) -> bool:
    """Whether an image's particles are rods: the median ratio of minor to major axis (particles of 16 px or more) under 0.5."""
    from skimage.measure import regionprops

    ratios = [p.axis_minor_length / max(p.axis_major_length, 1e-6) for p in regionprops(np.asarray(truth)) if p.area >= 16]
    return bool(ratios) and float(np.median(ratios)) < 0.5


def kinds(image, truth, rows) -> list[str]:
    """The kinds an annotated image belongs to: its particles' polarity, its median particle diameter's range
    and, for rods, "elongated"."""
    spec = np.asarray(image[rows], np.float32)
    fg = truth > 0
    out = []
    if fg.any() and not fg.all():
        lo, hi = np.percentile(spec, [1, 99.8])
        contrast = (np.median(spec[~fg]) - np.median(spec[fg])) / max(hi - lo, 1e-6)
        out.append("dark particles" if contrast > 0.1 else "bright particles" if contrast < -0.1 else "low contrast")
    d = median_diameter(truth)
    out += [name for low, high, name in SIZE_BINS if np.isfinite(d) and low <= d < high]
    if elongated(truth):
        out.append("elongated (rods)")
    return out


def whole_diameters(labels):
    """Equivalent diameters (px) of the particles of 16 px or more that the image border does not cut."""
    from napari_nanogan.measure import equivalent_diameters

    return equivalent_diameters(labels, min_area=16, whole_only=True)


def scores(pairs):
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summarize(pairs).items() if k != "per_image"}


def tune_baseline(key, triples, max_images=30):
    grid = {
        "sigma": [0.0, 1.0, 2.0],
        "polarity": ["bright", "dark", "minority"],
        "min_distance": [3, 5, 8, 12],
    }
    data = []
    for _, img_path, mask_path in triples[:max_images]:
        image, _ = read_image(img_path)
        truth, rows = truth_and_rows(key, image, read_mask(mask_path))
        data.append((image, truth, rows))
    best, best_cfg = -1, None
    for sigma, polarity, md in itertools.product(*grid.values()):
        cfg = ClassicalConfig(sigma=sigma, polarity=polarity, min_distance=md)
        s = summarize([(t, otsu_watershed(im, cfg)[r]) for im, t, r in data])
        score = (s["iou"] + s["f1"]) / 2
        if score > best:
            best, best_cfg = score, cfg
    return best_cfg


def reference_scores(key, data_dir, pred_dir, stems):
    """Run ../shared/tools/evalseg.py on a temporary copy of the split's layout."""
    tool = Path(data_dir).parent.parent / "tools" / "evalseg.py"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if key == "bam":
            rows = [r for r in csv.DictReader(open(Path(data_dir) / "pairs.csv")) if Path(r["image"]).stem in stems]
            with open(tmp / "pairs.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=rows[0].keys())
                w.writeheader()
                w.writerows(rows)
            for sub in ("images", "masks"):
                os.symlink(Path(data_dir).resolve() / sub, tmp / sub)
        else:
            (tmp / "ids.txt").write_text("\n".join(sorted(stems)) + "\n")
            os.symlink(Path(data_dir).resolve() / "masks", tmp / "masks")
        out = subprocess.run([sys.executable, str(tool), key, str(pred_dir), str(tmp)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.evaluate")
    ap.add_argument("--model", default="default")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--datasets", default="bam,emps")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--save-dir", default=None, help="keep predictions here as <stem>_labels.tif")
    ap.add_argument("--check-reference", action="store_true")
    ap.add_argument("--invert", action="store_true", help="mirror each image's grey levels within its range")
    ap.add_argument("--no-scale-check", action="store_true",
                    help="segment(..., scale_check=False): keep the scale of each estimate")
    ap.add_argument("--no-polarity-check", action="store_true",
                    help="segment(..., polarity_check=False): keep each image's own grey levels")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--auto-diameter", action="store_true",
                      help='segment(diameter="auto"): the model\'s size model estimates each image\'s diameter')
    size.add_argument("--diameter-from-truth", type=float, default=None, metavar="FACTOR",
                      help="pass segment(diameter=FACTOR x the annotated median equivalent-circle diameter), "
                           "as a user who knows the rough particle size would (1 = exact, 1.3 = 30 %% too large)")
    args = ap.parse_args(argv)
    if args.invert and args.baseline:
        ap.error("--invert with --baseline would tune the baseline on images of the other polarity")

    from napari_nanogan.segmentation import load_segmenter, segment

    seg = load_segmenter(args.model)
    splits = shared_splits(args.data_root)
    result = {"model": args.model, "split": args.split, "data_root": args.data_root,
              "diameter_from_truth": args.diameter_from_truth, "auto_diameter": args.auto_diameter,
              "inverted": args.invert, "scale_check": not args.no_scale_check,
              "polarity_check": not args.no_polarity_check}
    folders = {"bam": "bam_tio2_sem", "emps": "emps"}
    for key in args.datasets.split(","):
        triples = splits[key][args.split]
        save = Path(args.save_dir or tempfile.mkdtemp()) / key
        save.mkdir(parents=True, exist_ok=True)
        pairs, base_pairs, seconds, estimates, kind_of, sizes, confidence = [], [], [], [], [], ([], []), ([], [])
        cfg = tune_baseline(key, splits[key]["train"]) if args.baseline else None
        for stem, img_path, mask_path in triples:
            image, meta = read_image(img_path)
            truth, rows = truth_and_rows(key, image, read_mask(mask_path))
            if args.invert:
                image = inverted(image)
            t = time.perf_counter()
            diameter = None if args.diameter_from_truth is None else args.diameter_from_truth * median_diameter(truth)
            result_ = segment(image, seg, diameter="auto" if args.auto_diameter else diameter,
                              scale_check=not args.no_scale_check, polarity_check=not args.no_polarity_check)
            labels = result_.labels
            seconds.append(time.perf_counter() - t)
            estimates.append((result_.diameter_px if args.auto_diameter else None, median_diameter(truth)))
            kind_of.append(kinds(image, truth, rows))
            write_labels(save / f"{stem}_labels.tif", labels)
            pairs.append((truth, labels[rows]))
            sizes[0].append(whole_diameters(truth))
            sizes[1].append(whole_diameters(labels[rows]))
            if result_.confidence is not None and result_.count:
                from napari_nanogan.training.confidence import matched

                present = np.unique(labels[rows])
                present = present[present > 0]
                confidence[0].append(result_.confidence[present - 1])
                confidence[1].append(matched(truth, labels[rows])[present - 1])
            if cfg is not None:
                base_pairs.append((truth, otsu_watershed(image, cfg)[rows]))
        entry = {"images": len(triples), "model": scores(pairs), "seconds_per_image": round(float(np.mean(seconds)), 3)}
        from napari_nanogan.training.sizing import size_errors

        if args.auto_diameter:
            known = [(e, t) for e, t in estimates if e is not None and np.isfinite(t)]
            entry["diameter_estimates"] = size_errors(*np.array(known).T) if known else None
        truth_d, pred_d = np.concatenate(sizes[0]), np.concatenate(sizes[1])
        if truth_d.size and pred_d.size:
            entry["whole_particle_sizes_px"] = {
                f"D{q}": {"annotated": round(float(a), 2), "segmented": round(float(b), 2),
                          "error": round(float(b / a - 1), 4)}
                for q, a, b in zip((10, 50, 90), np.percentile(truth_d, [10, 50, 90]), np.percentile(pred_d, [10, 50, 90]))}
        if confidence[0]:
            from napari_nanogan.training.confidence import reliability

            entry["confidence"] = reliability(np.concatenate(confidence[0]), np.concatenate(confidence[1]))
        by_kind = {}
        for name in sorted({k for ks in kind_of for k in ks}):
            chosen = [i for i, ks in enumerate(kind_of) if name in ks]
            by_kind[name] = {"images": len(chosen), **{k: v for k, v in scores([pairs[i] for i in chosen]).items()
                                                       if k in ("dice", "iou", "precision", "recall", "f1")}}
            if args.auto_diameter:
                known = [estimates[i] for i in chosen if estimates[i][0] is not None and np.isfinite(estimates[i][1])]
                if known:
                    by_kind[name]["diameter_estimates"] = size_errors(*np.array(known).T)
            if cfg is not None:
                by_kind[name]["baseline_f1"] = round(summarize([base_pairs[i] for i in chosen])["f1"], 4)
        entry["by_kind"] = by_kind
        if cfg is not None:
            entry["baseline"] = scores(base_pairs)
            entry["baseline_config"] = cfg.to_dict()
        if args.check_reference:
            entry["reference_evalseg"] = reference_scores(key, Path(args.data_root) / folders[key], save, {t[0] for t in triples})
        result[key] = entry
        print(f"{key}: {json.dumps(entry)}", file=sys.stderr)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
