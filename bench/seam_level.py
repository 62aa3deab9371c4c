"""How synthetic images draw the places where touching particles meet; prints JSON.

    python -m bench.seam_level [--model default] [--images 6] [--styles 2]

Contact-line level (as ``../shared/tools/seam.py`` measures it): (median grey on the
separator lines between touching annotated particles - median background) / (median
particle interior - median background); 0 draws a contact as background (a dark seam),
1 as particle. Real BAM SEM fields measure about 0.68. The BAM training masks are drawn
by the generator (``--styles`` seeds each) and scored against their own real images'
levels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.data.targets import separator_lines
from napari_nanogan.synthesis import load_generator, synthesize


def contact_level(image: np.ndarray, labels: np.ndarray) -> float | None:
    """The contact-line level of ``image`` for the instance ``labels`` (None: too few separator pixels)."""
    img = np.asarray(image, float)
    fg = labels > 0
    sep = separator_lines(labels)
    interior = ndi.binary_erosion(fg, iterations=3)
    background = ndi.binary_erosion(~fg, iterations=5)
    if sep.sum() < 20 or interior.sum() < 100 or background.sum() < 100:
        return None
    ib, ii = np.median(img[background]), np.median(img[interior])
    return float((np.median(img[sep]) - ib) / (ii - ib + 1e-9))


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.seam_level")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--styles", type=int, default=2)
    args = ap.parse_args()
    samples = load_samples(shared_splits(args.data_root)["bam"]["train"][: args.images], domain="bam")
    generator = load_generator(args.model)
    real = [contact_level(s.image, s.labels) for s in samples]
    synthetic = [contact_level(synthesize(s.labels, generator, seed=k), s.labels)
                 for s in samples for k in range(args.styles)]
    real, synthetic = [v for v in real if v is not None], [v for v in synthetic if v is not None]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"model": args.model, "real_level": round(float(np.mean(real)), 3),
                      "real_levels": [round(v, 3) for v in real], "synthetic_level": round(float(np.mean(synthetic)), 3),
                      "synthetic_levels": [round(v, 3) for v in synthetic],
                      "difference": round(float(np.mean(synthetic) - np.mean(real)), 3), "commit": commit}))


if __name__ == "__main__":
    main()
