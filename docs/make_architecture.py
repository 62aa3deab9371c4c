"""Draw docs/images/architecture.png: the package's layers and the flows of an image and of a mask.

    python docs/make_architecture.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

LAYERS = [  # top to bottom: who may import whom (down only)
    ("clients", "cli/  ·  widgets/  ·  _napari (reader, samples)", "#f4d6d6"),
    ("training/", "loop · segmenter · tuning · cyclegan · texture · finetune · amend · data", "#f7e3c6"),
    ("synthesis/", "generator · pipeline (synthesize, synthetic_pairs) · finishing · texture", "#f3f0c4"),
    ("segmentation/", "segmenter (Segmenter, AutoSegmenter) · pipeline (segment) · tiles · statistics\n"
                      "scale · polarity · sizing · postprocess · classical", "#d9f0d3"),
    ("models/  ·  data/", "networks · checkpoint · registry · runtime\n"
                          "datasets · splits · targets · augment · procedural · designer", "#d4e6f4"),
    ("normalize · measure\nmetrics/ · overlay", "intensity range · per-particle sizes · scores, FID/KID · pictures",
     "#e2dcf0"),
    ("io/", "images · metadata (pixel size) · infobar · masks · pairs · atomic", "#e8e8e8"),
    ("config/  ·  progress", "frozen dataclasses, named choices, defaults written once  ·  drive()", "#ffffff"),
]

IMAGE_FLOW = [("", "io.read_image\n(image file, pixel size)"), ("", "io.detect_info_bar"),
              ("", "segmentation.scale\n(diameter, resize)"), ("", "segmentation.tiles\n(network, tiles, blend)"),
              ("", "segmentation.postprocess\n(seeded watershed)"), ("", "labels -> measure\n(D10/D50/D90 in nm)")]
MASK_FLOW = [("", "io.masks.check_mask\n(painted, loaded or designed)"), ("", "data.targets\n(foreground, interior)"),
             ("", "models.style_unet\n(style z, noise)"), ("", "synthesis.finishing\n(blur, grey levels, noise)"),
             ("", "synthesis.texture\n(substrate, particles)"), ("", "image (+ mask) ->\nio.pairs.export_pairs")]


def box(ax, x, y, w, h, text, color, size=9, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.01,rounding_size=0.015", fc=color, ec="#555555",
                                lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)


def arrow(ax, a, b):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, lw=1.2, color="#333333",
                                 shrinkA=0, shrinkB=0, zorder=5))


def main() -> None:
    fig = plt.figure(figsize=(14, 8.2), dpi=110)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.text(0.02, 0.965, "Layers (imports point down only; tests/test_architecture.py checks it)", fontsize=12,
            weight="bold")
    h, top = 0.085, 0.9
    for k, (name, detail, color) in enumerate(LAYERS):
        y = top - k * (h + 0.012)
        box(ax, 0.02, y - h, 0.17, h, name, color, size=10, weight="bold")
        box(ax, 0.195, y - h, 0.33, h, detail, color, size=8)
    arrow(ax, (0.545, 0.88), (0.545, 0.14))
    ax.text(0.552, 0.5, "imports", rotation=-90, va="center", fontsize=9)
    for title, flow, x in (("An image through segmentation", IMAGE_FLOW, 0.6),
                           ("A mask through synthesis", MASK_FLOW, 0.8)):
        ax.text(x + 0.085, 0.93, title, ha="center", fontsize=11, weight="bold")
        bh, gap, y = 0.085, 0.055, 0.88
        for k, (label, step) in enumerate(flow):
            box(ax, x, y - bh, 0.17, bh, step, "#f5f5f5", size=8)
            if label:
                ax.text(x + 0.175, y - 0.005, label, ha="left", va="top", fontsize=8, style="italic", color="#444444")
            if k + 1 < len(flow):
                arrow(ax, (x + 0.085, y - bh), (x + 0.085, y - bh - gap))
            y -= bh + gap
    out = Path(__file__).resolve().parent / "images" / "architecture.png"
    fig.savefig(out)
    print(out)


if __name__ == "__main__":
    main()
