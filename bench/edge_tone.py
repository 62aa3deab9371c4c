"""Grey levels by distance to the particles' outline (:class:`EdgeTone`), measured and not kept; prints JSON.

    python -m bench.edge_tone [--model default] [--n 500]

The protocol of ``bench.synthesis_quality`` (500 random 256 x 256 crops per side, the 9
held-out BAM images, the info bar excluded; the same styles and crop positions, so
``checkpoint`` reproduces its ``generator_checkpoint``). ``EdgeTone`` is fitted on the 21
training images against the generator's images of their masks (one style each, seeds
100000 + i, as ``nanogan tune-generator --calibrate`` does), never on the held-out ones:

- ``checkpoint``: the checkpoint as shipped (its finishing, then its substrate texture);
- ``edge_tone_before_texture``: finishing, the edge tone, then the texture (fitted on
  finished images without the texture);
- ``edge_tone_after_texture``: finishing, texture, then the edge tone (fitted on
  images with the texture);
- ``zones``: per zone of ``edge_zones``, the median grey level of the real training images
  and of the synthetic ones before the map.

Measured with a substrate texture of 6000 training steps: FID 89.6 for the checkpoint, 127.3
with the map before the texture, 138.1 after it. Not kept (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_nanogan.data.targets import contact_zone


#: Signed-distance bins of :class:`EdgeTone` (px; > 0 inside the particles, < 0 outside).
EDGE_TONE_BINS = (-12, -10, -8, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 8, 10, 13, 17)
#: Quantiles per bin of :class:`EdgeTone`.
EDGE_TONE_QUANTILES = 65


def edge_zones(labels: np.ndarray) -> np.ndarray:
    """int8 zone of every pixel for :class:`EdgeTone`: -1 far out on the substrate (left alone), else a bin.

    Bins 0 .. len(EDGE_TONE_BINS) - 2 follow the signed distance to the particles' outline
    (``EDGE_TONE_BINS``: outside within 12 px, the rim, the interior up to 17 px and deeper);
    the last bin is the seams: particle pixels within 2 px of a different particle.
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    fg = labels > 0
    zones = np.full(labels.shape, -1, np.int8)
    if not fg.any():
        return zones
    signed = np.where(fg, ndi.distance_transform_edt(fg), -ndi.distance_transform_edt(~fg))
    edges = np.asarray(EDGE_TONE_BINS, np.float64)
    near = signed > edges[0]
    zones[near] = np.clip(np.digitize(signed[near], edges[1:]), 0, len(edges) - 2)
    zones[contact_zone(labels, radius=2) & fg] = len(edges) - 1
    return zones


@dataclass(frozen=True)
class EdgeTone:
    """Grey levels mapped by the distance to the particles' outline, fitted on real images.

    For each zone of :func:`edge_zones` (the substrate within 12 px of a particle, the rim,
    the interior by depth, the seams between touching particles), a monotone map sends the
    synthetic images' quantiles to the real images' (quantile mapping). The generator's
    particles are flatter and dimmer than real TiO2 (no edge brightening, dark seams where
    real particles overlap with a bright edge); this puts back the mean profile across the
    outline while keeping each image's ordering of grey levels. Far substrate is left as is.

    Attributes
    ----------
    synthetic, real : tuple of tuple of float
        Per zone, ``EDGE_TONE_QUANTILES`` quantiles of the synthetic and the real grey levels.
    """

    synthetic: tuple = ()
    real: tuple = ()

    def to_dict(self) -> dict:
        return {"bins": list(EDGE_TONE_BINS), "synthetic": [list(q) for q in self.synthetic],
                "real": [list(q) for q in self.real]}

    @classmethod
    def from_dict(cls, data: dict) -> "EdgeTone":
        if list(data.get("bins", [])) != list(EDGE_TONE_BINS):
            raise ValueError("this edge tone map was fitted with other distance bins")
        return cls(tuple(tuple(float(v) for v in q) for q in data["synthetic"]),
                   tuple(tuple(float(v) for v in q) for q in data["real"]))

    @classmethod
    def fit(cls, real_images, synthetic_images, labels) -> "EdgeTone":
        """Fit on real images, synthetic images of their masks (as :func:`synthesize` makes them, without this map) and the masks."""
        n_zones = len(EDGE_TONE_BINS)
        real_v, synth_v = [[] for _ in range(n_zones)], [[] for _ in range(n_zones)]
        for real, synth, lab in zip(real_images, synthetic_images, labels):
            if np.shape(real) != np.shape(lab) or np.shape(synth) != np.shape(lab):
                raise ValueError("each real image, synthetic image and mask must have the same shape")
            zones = edge_zones(lab)
            for z in range(n_zones):
                sel = zones == z
                real_v[z].append(np.asarray(real, np.float32)[sel])
                synth_v[z].append(np.asarray(synth, np.float32)[sel])
        q = np.linspace(0, 1, EDGE_TONE_QUANTILES)
        synthetic, real = [], []
        for z in range(n_zones):
            r, s = np.concatenate(real_v[z]), np.concatenate(synth_v[z])
            if r.size < 100 or s.size < 100:  # a zone these masks never have: identity
                synthetic.append(tuple(q * 255)), real.append(tuple(q * 255))
                continue
            synthetic.append(tuple(float(v) for v in np.quantile(s, q)))
            real.append(tuple(float(v) for v in np.quantile(r, q)))
        return cls(tuple(synthetic), tuple(real))

    def apply(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``image`` (uint8) with its grey levels near and on the particles mapped; the same shape and type."""
        image = np.asarray(image)
        zones = edge_zones(labels)
        out = image.astype(np.float32)
        for z, (s, r) in enumerate(zip(self.synthetic, self.real)):
            sel = zones == z
            if sel.any():
                # strictly increasing knots for np.interp (flat runs of equal quantiles)
                knots = np.asarray(s) + np.arange(len(s)) * 1e-4
                out[sel] = np.interp(out[sel], knots, np.asarray(r))
        return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.edge_tone", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = ap.parse_args(argv)

    from napari_nanogan.data.datasets import shared_splits
    from napari_nanogan.metrics.fid import fid_kid, load_inception, random_crops
    from napari_nanogan.synthesis import load_generator, synthesize
    from napari_nanogan.synthesis.finishing import apply_finishing
    from bench.synthesis_quality import load_bam

    split = shared_splits(args.data_root)["bam"]
    held, train = load_bam(split["val"] + split["test"]), load_bam(split["train"])
    gen = load_generator(args.model, device="cpu")
    texture = gen.texture

    def u8(im):
        return np.clip(np.round(im), 0, 255).astype(np.uint8)

    def lay(im, lab, seed):
        return texture.apply(im, lab > 0, seed) if texture is not None else im

    post_train = [apply_finishing(synthesize(lab, gen, seed=10**5 + i, raw=True), gen.finishing, 10**5 + i, lab)
                  for i, (_, lab) in enumerate(train)]
    labels_train = [lab for _, lab in train]
    real_train = [u8(im) for im, _ in train]
    before = EdgeTone.fit(real_train, post_train, labels_train)
    after = EdgeTone.fit(real_train, [lay(im, lab, 10**5 + i) for i, (im, lab) in enumerate(zip(post_train, labels_train))],
                         labels_train)

    zones = []
    for z in range(len(EDGE_TONE_BINS)):
        r = np.concatenate([im[edge_zones(lab) == z] for im, lab in zip(real_train, labels_train)])
        s = np.concatenate([im[edge_zones(lab) == z] for im, lab in zip(post_train, labels_train)])
        zones.append({"zone": "seam" if z == len(EDGE_TONE_BINS) - 1 else f"[{EDGE_TONE_BINS[z]}, {EDGE_TONE_BINS[z + 1]})",
                      "real_median": float(np.median(r)), "synthetic_median": float(np.median(s)), "pixels": int(r.size)})

    variants = {"checkpoint": [], "edge_tone_before_texture": [], "edge_tone_after_texture": []}
    for i, (_, lab) in enumerate(held):
        for s in range(3):
            seed = 1000 * i + s
            post = apply_finishing(synthesize(lab, gen, seed=seed, raw=True), gen.finishing, seed, lab)
            textured = lay(post, lab, seed)
            variants["checkpoint"].append(textured)
            variants["edge_tone_before_texture"].append(lay(before.apply(post, lab), lab, seed))
            variants["edge_tone_after_texture"].append(after.apply(textured, lab))

    net = load_inception()
    real_eval = random_crops([im for im, _ in held], args.n, 256, seed=0)
    result = {"model": args.model, "zones": zones}
    for name, imgs in variants.items():
        result[name] = fid_kid(real_eval, random_crops([im.astype(np.float32) for im in imgs], args.n, 256, seed=2), net)
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
