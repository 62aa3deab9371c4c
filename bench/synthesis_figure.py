"""Figure: masks and several synthetic styles per mask, beside the real images (when given).

    python -m bench.synthesis_figure --out runs/synthesis_real.png            # held-out BAM masks + their real images
    python -m bench.synthesis_figure --procedural --out docs/images/synthesis_styles.png
    python -m bench.synthesis_figure --dataset emps-tem --model tem --out runs/synthesis_tem_real.png

With the shared data, each row is a held-out BAM image (val + test split, never
trained on): a 256 x 256 crop of the real image, its annotated mask, and ``--styles``
images synthesized from that mask. The real data may not be committed (licence), so
the figure in docs/ is made with ``--procedural``: masks from the package's own
particle designer, and no real column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_nanogan.data.datasets import shared_splits
from napari_nanogan.io.images import read_image
from napari_nanogan.io.infobar import detect_info_bar
from napari_nanogan.io.masks import instance_labels, read_mask

CROP = 256


def real_rows(data_root: str, n: int) -> list[tuple[np.ndarray | None, np.ndarray]]:
    bam = shared_splits(data_root)["bam"]
    rows = []
    for _, image_path, mask_path in (bam["val"] + bam["test"])[:n]:
        image, _ = read_image(image_path)
        bar = detect_info_bar(image)
        stop = bar.start if bar is not None and bar.start > 0 else image.shape[0]
        y, x = (stop - CROP) // 2, (image.shape[1] - CROP) // 2
        labels = instance_labels(read_mask(mask_path)[:stop])
        rows.append((image[y : y + CROP, x : x + CROP], labels[y : y + CROP, x : x + CROP]))
    return rows


def tem_rows(data_root: str, n: int, crop: int = 128) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """Held-out EMPS images with dark particles at the model's scale (as the TEM generator learned them): centre crops."""
    from napari_nanogan.training.data import bright_field_samples

    emps = shared_splits(data_root)["emps"]
    rows = []
    for sample in bright_field_samples(emps["val"] + emps["test"])[:n]:
        h, w = sample.image.shape
        y, x = (h - crop) // 2, (w - crop) // 2
        rows.append((sample.image[y : y + crop, x : x + crop], sample.labels[y : y + crop, x : x + crop]))
    return rows


def procedural_rows(n: int) -> list[tuple[np.ndarray | None, np.ndarray]]:
    from napari_nanogan.data.procedural import particle_labels

    settings = [dict(n_particles=60, mean_diameter=24), dict(n_particles=25, mean_diameter=40, facets=6),
                dict(n_particles=120, mean_diameter=14, clustering=0.9)]
    return [(None, particle_labels((CROP, CROP), seed=k, **settings[k % len(settings)])) for k in range(n)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.synthesis_figure")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--procedural", action="store_true", help="the package's own masks, no real images")
    ap.add_argument("--dataset", default="bam", choices=["bam", "emps-tem"],
                    help="real rows from the held-out BAM images or EMPS bright-field TEM images (128-px crops)")
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--styles", type=int, default=3)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_nanogan.synthesis import load_generator, synthesize

    if args.procedural:
        rows = procedural_rows(args.rows)
    elif args.dataset == "emps-tem":
        rows = tem_rows(args.data_root, args.rows)
    else:
        rows = real_rows(args.data_root, args.rows)
    generator = load_generator(args.model, device="cpu")
    has_real = rows[0][0] is not None
    cols = int(has_real) + 1 + args.styles
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.2 * len(rows)), squeeze=False)
    for r, (real, mask) in enumerate(rows):
        panels = ([("real (held out)", real)] if has_real else []) + [("mask", mask > 0)]
        panels += [(f"synthetic, seed {s}", synthesize(mask, generator, seed=s)) for s in range(args.styles)]
        for c, (title, img) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1 if img.dtype == bool else 255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
