"""Which network `auto` picks for an image, and why; prints one JSON object.

    python -m bench.auto_choice [--image FILE]

Without ``--image``: the package's procedural sample (the demo's image), whose drawn
particles are the truth. For the image: the polarity of `default`'s half-size first
pass, then for each shipped network its foreground's agreement (IoU) with that pass
(what `auto` compares with ``min_agreement``), its share of the specimen marked as
particle and, with a truth, its foreground IoU and instance F1. ``chosen`` is what
`segment(image, "auto")` used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.auto_choice", description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="an image file (default: the procedural sample)")
    args = parser.parse_args(argv)

    from napari_nanogan.data.procedural import sample_image
    from napari_nanogan.io.images import read_image
    from napari_nanogan.io.infobar import detect_info_bar
    from napari_nanogan.metrics.segmentation import summarize
    from napari_nanogan.segmentation import load_segmenter, segment
    from napari_nanogan.segmentation.polarity import polarity_pass

    if args.image:
        image, truth, name = read_image(args.image)[0], None, Path(args.image).name
    else:
        image, truth = sample_image()
        name = "procedural sample"
    bar = detect_info_bar(image)
    rows = bar.specimen_rows if bar is not None else slice(None)
    auto = load_segmenter("auto")
    first = polarity_pass(image, auto.general, rows)
    out = {"image": name, "polarity": round(first.polarity, 3), "min_agreement": auto.min_agreement,
           "chosen": segment(image, auto).model, "networks": {}}
    for net in (auto.general, auto.bright):
        result = segment(image, net)
        pred = result.labels[rows]
        row = {"agreement": round(first.agreement(result.foreground, rows), 3),
               "particle_share": round(float((pred > 0).mean()), 3)}
        if truth is not None:
            t = truth[rows]
            scores = summarize([(t, pred)])
            row.update({k: round(scores[k], 3) for k in ("iou", "f1", "precision", "recall")})
            row["truth_share"] = round(float((t > 0).mean()), 3)
        out["networks"][net.name] = row
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    out["commit"] = commit or None
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
