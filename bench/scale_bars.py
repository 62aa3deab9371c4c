"""Scale bars found on the shared images, and the pixel size they give; prints one JSON object.

    python -m bench.scale_bars [--data-root ../shared/data] [--sheet runs/scale_bars.png --sample 18 --seed 1]
    python -m bench.scale_bars --predictions DIR    # DIR: bench.evaluate --datasets emps --save-dir DIR (its emps/)

BAM: every field's bar is a Zeiss data-bar ruler of 200 nm (one of 300 nm); the pixel size it gives
(the nominal length nearer the recorded pixel size, over the bar's pixels) against the 7.344 nm the file
records. EMPS: figure crops without a pixel size, most with a bar burnt in, none with its length
recorded: how many get a bar, and of the annotated particles lying wholly in a bar's label zone
(``segmentation.marks.scale_bar_zone``), the largest share of their pixels at the bar's level (the
rule that drops a label's letters needs ``config.SCALE_BAR_INK_SHARE``). ``--predictions``: the same
for the particles a segmentation found there, each matched to an annotated one (IoU 0.5) or not.
``--sheet`` writes crops of a random sample of the bars, each underlined in red, to look at (from
the shared data: never commit it).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
from pathlib import Path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bars", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--sheet", help="a PNG of crops of a sample of the EMPS bars found")
    parser.add_argument("--sample", type=int, default=18)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--predictions",
                        help="a folder of <stem>_labels.tif of EMPS images (bench.evaluate --save-dir)")
    args = parser.parse_args(argv)

    import numpy as np

    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.scalebar import find_scale_bar

    root = Path(args.data_root)
    errors, missing = [], []
    for path in sorted((root / "bam_tio2_sem" / "images").glob("*.tif")):
        image, meta = read_image(path)
        bar = find_scale_bar(image)
        if bar is None:
            missing.append(path.name)
            continue
        recorded = meta["pixel_size_nm"]
        nominal = min((200.0, 300.0), key=lambda nm: abs(nm / bar.length_px - recorded))
        errors.append(nominal / bar.length_px / recorded - 1)
    from napari_nanogan.io.masks import read_mask

    found, in_zone = [], []
    emps = sorted((root / "emps" / "images").glob("*.png"))
    for path in emps:
        image = read_image(path)[0]
        bar = find_scale_bar(image)
        if bar is not None:
            found.append((path, bar))
            in_zone += [share for share, _ in _in_zone(image, bar, read_mask(root / "emps" / "masks" / path.name))]
    out = {
        "bam": {"images": len(errors) + len(missing), "found": len(errors), "missing": missing,
                "pixel_size_error_max_abs": round(float(np.max(np.abs(errors))), 4) if errors else None,
                "pixel_size_error_mean": round(float(np.mean(errors)), 4) if errors else None},
        "emps": {"images": len(emps), "found": len(found),
                 "levels": {lv: sum(b.level == lv for _, b in found) for lv in ("white", "black")},
                 "length_px_median": float(np.median([b.length_px for _, b in found])) if found else None,
                 "annotated_particles_in_label_zones": len(in_zone),
                 "their_largest_share_at_bar_level": round(max(in_zone), 4) if in_zone else None},
    }
    if args.predictions:
        out["predictions"] = _predictions(Path(args.predictions), root / "emps")
    if args.sheet and found:
        out["sheet"] = _sheet(args.sheet, random.Random(args.seed).sample(found, min(args.sample, len(found))))
    out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                   text=True).stdout.strip() or None
    print(json.dumps(out))
    return out


def _in_zone(image, bar, labels) -> list[tuple[float, int]]:
    """(share of pixels at the bar's level, label) of the particles of ``labels`` wholly (9/10) in the bar's zone."""
    import numpy as np

    from napari_nanogan.segmentation.marks import scale_bar_zone

    zone, at_level = scale_bar_zone(image, bar)
    out = []
    for k in np.unique(labels[zone]):
        if k and zone[labels == k].mean() >= 0.9:
            out.append((float(at_level[labels == k].mean()), int(k)))
    return out


def _predictions(folder: Path, emps: Path) -> dict:
    import numpy as np
    import tifffile

    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.masks import read_mask
    from napari_nanogan.io.scalebar import find_scale_bar

    matched, false = [], []
    for path in sorted(folder.glob("*_labels.tif")):
        stem = path.name[: -len("_labels.tif")]
        image = read_image(emps / "images" / f"{stem}.png")[0]
        bar = find_scale_bar(image)
        if bar is None:
            continue
        pred, truth = tifffile.imread(path), read_mask(emps / "masks" / f"{stem}.png")
        for share, k in _in_zone(image, bar, pred):
            under = truth[pred == k]
            ids, counts = np.unique(under[under > 0], return_counts=True)
            area = int((pred == k).sum())
            best = max((c / (area + int((truth == t).sum()) - c) for t, c in zip(ids, counts)), default=0.0)
            (matched if best >= 0.5 else false).append(round(share, 3))
    return {"images": len(list(folder.glob("*_labels.tif"))), "matched_in_label_zones": sorted(matched),
            "false_in_label_zones": sorted(false)}


def _sheet(path: str, chosen) -> dict:
    import numpy as np
    from PIL import Image, ImageDraw

    from napari_nanogan.io.images import read_image

    tiles = []
    for image_path, bar in chosen:
        image = read_image(image_path)[0]
        h, w = image.shape[:2]
        cy, cx = (bar.top + bar.bottom) // 2, int((bar.start + bar.stop) / 2)
        y0, x0 = max(0, min(h - 100, cy - 50)), max(0, min(w - 200, cx - 100))
        tile = Image.fromarray(image[y0 : y0 + 100, x0 : x0 + 200]).convert("RGB")
        ImageDraw.Draw(tile).line([bar.start - x0, bar.bottom - y0 + 3, bar.stop - x0, bar.bottom - y0 + 3],
                                  fill=(255, 0, 0), width=2)
        tiles.append(np.asarray(tile.resize((400, 200), Image.NEAREST)))
    while len(tiles) % 3:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.concatenate([np.concatenate(tiles[i : i + 3], 1) for i in range(0, len(tiles), 3)], 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return {"path": path, "images": [p.name for p, _ in chosen]}


if __name__ == "__main__":
    main()
