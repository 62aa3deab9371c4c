"""Which part of the synthetic images costs FID: the substrate or the particles? Prints JSON.

    python -m bench.synthesis_parts [--model default] [--n 500] [--seeds 3]

A diagnostic for where a better generator must improve. The generator
draws the training masks (``--seeds`` styles each, with its finishing and textures, as
``synthesize`` returns them); each synthetic image is then composited with its real
training image through the mask:

- ``synthetic``: the synthetic image as it is;
- ``real_substrate``: real substrate (mask 0) + synthetic particles;
- ``real_particles``: real particles + synthetic substrate;
- ``real``: the training images themselves (the floor's side);
- ``particle_detail``: the synthetic image, its particles' fine detail (finer than
  ``--sigma`` px) replaced by the real image's: what perfect surface detail and noise
  on the particles would give;
- ``particle_shading``: the reverse, real particles' coarse shading (edge brightening,
  3D relief) under the synthetic fine detail: what perfect shading would give;
- ``detail_rim`` / ``detail_interior``: ``particle_detail`` with the real fine band taken
  only within ``--rim`` px of the outline / only deeper: whether the detail that counts
  follows the outlines (a texture blind to the mask cannot draw it) or fills the interiors.

The band split is taken inside the particles only (a Gaussian normalised over the
mask), so the substrate never leaks into the particles' level. ``--sets`` picks which
to measure (default: the first four).

Each against 500 random 256-px crops of the 9 held-out BAM images (the protocol of
``bench.synthesis_quality``; info bar excluded). The training masks are used because a
composite must not contain the held-out images it is compared with; the generator has
seen these masks in training, so ``synthetic`` here may sit a little below the
held-out-mask figure of ``bench.synthesis_quality``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def composite(real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, keep: str) -> np.ndarray:
    """``keep="substrate"``: real where labels == 0, synthetic elsewhere; ``"particles"``: the reverse."""
    if keep not in ("substrate", "particles"):
        raise ValueError(f"keep must be 'substrate' or 'particles', not {keep!r}")
    particles = labels > 0
    return np.where(particles if keep == "particles" else ~particles, real, synthetic).astype(np.float32)


def split_bands(image: np.ndarray, inside: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` inside the boolean ``inside`` -> (coarse, fine): the Gaussian of ``sigma`` px normalised
    over ``inside``, and the rest; both 0 outside."""
    from scipy.ndimage import gaussian_filter

    w = inside.astype(np.float64)
    num = gaussian_filter(image.astype(np.float64) * w, sigma, mode="reflect")
    den = gaussian_filter(w, sigma, mode="reflect")
    coarse = np.where(inside, num / np.maximum(den, 1e-6), 0.0)
    return coarse, np.where(inside, image - coarse, 0.0)


def swap_band(real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, band: str, sigma: float = 2.0,
              zone: str = "all", rim: int = 2) -> np.ndarray:
    """The synthetic image with its particles' ``band`` (``"fine"`` or ``"coarse"``) taken from the real image,
    over all the particles' pixels (``zone="all"``), only those within ``rim`` px of the outline (``"rim"``), or
    only those deeper (``"interior"``)."""
    from scipy import ndimage as ndi

    if band not in ("fine", "coarse"):
        raise ValueError(f"band must be 'fine' or 'coarse', not {band!r}")
    if zone not in ("all", "rim", "interior"):
        raise ValueError(f"zone must be 'all', 'rim' or 'interior', not {zone!r}")
    inside = labels > 0
    real_coarse, real_fine = split_bands(real, inside, sigma)
    syn_coarse, syn_fine = split_bands(synthetic, inside, sigma)
    mixed = syn_coarse + real_fine if band == "fine" else real_coarse + syn_fine
    take = inside
    if zone != "all":  # depth inside a particle, touching particles separated by their label boundary
        edges = ndi.grey_dilation(labels, size=3) != ndi.grey_erosion(labels, size=3)
        deep = ndi.distance_transform_edt(inside & ~edges) >= rim
        take = inside & (deep if zone == "interior" else ~deep)
    return np.where(take, np.clip(mixed, 0, 255), synthetic).astype(np.float32)


SETS = ("synthetic", "real_substrate", "real_particles", "real", "particle_detail", "particle_shading",
        "detail_rim", "detail_interior")


def main():
    ap = argparse.ArgumentParser(prog="python -m bench.synthesis_parts")
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sets", default="synthetic,real_substrate,real_particles,real",
                    help="comma-separated, of: " + ", ".join(SETS))
    ap.add_argument("--sigma", type=float, default=2.0, help="band split for particle_detail / particle_shading (px)")
    ap.add_argument("--rim", type=int, default=2, help="depth (px) of the rim for detail_rim / detail_interior")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args()
    wanted = [name for name in args.sets.split(",") if name]
    if not wanted or set(wanted) - set(SETS):
        ap.error(f"--sets: choose from {', '.join(SETS)}")

    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
    from napari_nanogan.synthesis import load_generator, synthesize
    from bench.synthesis_quality import load_bam

    split = shared_splits(args.data_root)["bam"]
    held, train = load_bam(split["val"] + split["test"]), load_bam(split["train"])
    gen = load_generator(args.model, device="cpu")
    sets = {name: [] for name in wanted}
    make = {"synthetic": lambda real, syn, labels: syn,
            "real_substrate": lambda real, syn, labels: composite(real, syn, labels, "substrate"),
            "real_particles": lambda real, syn, labels: composite(real, syn, labels, "particles"),
            "particle_detail": lambda real, syn, labels: swap_band(real, syn, labels, "fine", args.sigma),
            "particle_shading": lambda real, syn, labels: swap_band(real, syn, labels, "coarse", args.sigma),
            "detail_rim": lambda real, syn, labels: swap_band(real, syn, labels, "fine", args.sigma, "rim", args.rim),
            "detail_interior": lambda real, syn, labels: swap_band(real, syn, labels, "fine", args.sigma, "interior",
                                                                   args.rim)}
    if set(wanted) - {"real"}:
        for i, (real, labels) in enumerate(train):
            for s in range(args.seeds):
                synthetic = synthesize(labels, gen, seed=20000 + 100 * i + s).astype(np.float32)
                for name in set(wanted) - {"real"}:
                    sets[name].append(make[name](real.astype(np.float32), synthetic, labels))
    if "real" in sets:
        sets["real"] = [im for im, _ in train]
    net = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, 256, seed=0)
    result = {"model": args.model, "masks": f"{len(train)} BAM training masks x {args.seeds} styles",
              "sigma": args.sigma, "rim": args.rim, "particle_fraction": round(float(np.mean([np.mean(lab > 0) for _, lab in train])), 3)}
    for name, images in sets.items():
        result[name] = fid_kid(real_eval, random_crops(images, args.n, 256, seed=1), net)
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
