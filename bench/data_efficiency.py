"""Data-efficiency study: segmenters trained on k real BAM SEM images, with and without
synthetic pairs from a cycle GAN trained on the same k images; prints JSON.

    python -m bench.data_efficiency --mode quick   # 2-core CPU, about an hour
    python -m bench.data_efficiency --mode full    # a GPU
    python -m bench.data_efficiency --mode smoke   # seconds: checks the pipeline
    python -m bench.data_efficiency --plot-only bench/results/data_efficiency_quick.json --figure docs/images/data_efficiency_quick.png

Protocol (docs/data-efficiency.md): for each k and seed, k images are drawn from the
BAM training split (the seed picks which); the BAM validation and test splits
(9 images, never trained on) are scored. Arms, all from scratch with the same
segmenter step budget, patch size, augmentation and fixed post-processing:

- ``real``: the k real images only.
- ``mixed``: the k real images + synthetic pairs (batches draw real and synthetic
  patches half and half). The synthetic pairs come from a cycle GAN trained on the
  same k images only, from masks of two kinds: random crops of the k masks and
  designer masks with the size statistics fitted to the k masks.
- ``mixed25``: as ``mixed``, a quarter of the patches synthetic (improvement 1:
  less weight on the imperfect domain).
- ``mixed_hist``: as ``mixed``, synthetic images histogram-matched to the k real
  images (improvement 2: close the global intensity gap).
- ``pretrain``: half the steps on synthetic pairs only, then half on real only
  (improvement 3: synthetic pairs as pre-training, not as training data).
- ``synthetic``: synthetic pairs only (how far do they go on their own).
- ``mixed_raw``, ``synthetic_raw``: as ``mixed`` and ``synthetic`` with images from the
  trained generator itself instead of its moving average (improvement 4: an average
  without a warm-up still holds most of the random initialisation after a short run).
- ``gan_segmenter``: the segmenter trained inside the cycle GAN (its own budget).

Each stage writes its result into ``--work`` and is skipped when run again, so an
interrupted study resumes where it stopped. Results: one JSON (``--json``) with
per-run scores and the mean and SD over seeds per (arm, k).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from napari_nanogan.config import GanTrainConfig, PostprocessConfig, SegmenterConfig, TrainConfig
from napari_nanogan.data.datasets import Sample, load_samples, shared_splits
from napari_nanogan.data.designer import design_mask, fit_design
from napari_nanogan.measure import equivalent_diameters
from napari_nanogan.metrics.segmentation import summarize
from napari_nanogan.normalize import intensity_range
from napari_nanogan.segmentation import Segmenter, load_segmenter, segment
from napari_nanogan.synthesis import Generator, synthesize
from napari_nanogan.training.cyclegan import train_cyclegan
from napari_nanogan.training.loop import machine_description
from napari_nanogan.training.segmenter import train_segmenter

BAM_PIXEL_NM = 7.344  # read from every BAM file's metadata (docs/benchmarks.md)
MIN_AREA_PX = 16
ARMS = ("real", "mixed", "mixed25", "mixed_hist", "pretrain", "synthetic", "gan_segmenter", "mixed_raw", "synthetic_raw")


@dataclass(frozen=True)
class Mode:
    ks: tuple
    seeds: tuple
    seg_steps: int
    gan_steps: int
    patch: int
    n_synthetic: int  # synthetic pairs per (k, seed)
    synth_size: int  # side of a synthetic image
    n_eval: int | None = None  # held-out images scored (None: all)


MODES = {
    "smoke": Mode(ks=(1,), seeds=(0,), seg_steps=3, gan_steps=3, patch=64, n_synthetic=4, synth_size=128, n_eval=2),
    "quick": Mode(ks=(2, 5), seeds=(0, 1), seg_steps=600, gan_steps=500, patch=128, n_synthetic=48, synth_size=384),
    "full": Mode(ks=(1, 2, 5, 10, "all"), seeds=(0, 1, 2), seg_steps=4000, gan_steps=4000, patch=256,
                 n_synthetic=200, synth_size=512),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def choose(train: list[Sample], k, seed: int) -> list[Sample]:
    if k == "all" or k >= len(train):
        return list(train)
    idx = np.random.default_rng(1000 + seed).choice(len(train), size=k, replace=False)
    return [train[i] for i in sorted(idx)]


def random_crop(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = labels.shape
    y, x = int(rng.integers(0, max(h - size, 0) + 1)), int(rng.integers(0, max(w - size, 0) + 1))
    crop = labels[y:y + size, x:x + size]
    crop = np.rot90(crop, int(rng.integers(4)))
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def synthetic_masks(real: list[Sample], mode: Mode, seed: int) -> list[np.ndarray]:
    """Half crops of the real masks, half designer masks fitted to them."""
    rng = np.random.default_rng(2000 + seed)
    # the k masks stacked (labels offset so that particles of different images stay apart)
    offsets = np.cumsum([0] + [int(s.labels.max()) for s in real[:-1]])
    pooled = np.concatenate([np.where(s.labels > 0, s.labels + o, 0) for s, o in zip(real, offsets)], axis=0)
    design = fit_design(pooled.astype(np.int32), BAM_PIXEL_NM, seed=seed)
    scale = mode.synth_size**2 / (pooled.shape[0] * pooled.shape[1])
    masks = []
    for i in range(mode.n_synthetic):
        if i % 2 == 0:
            src = real[int(rng.integers(len(real)))].labels
            masks.append(random_crop(src, mode.synth_size, rng))
        else:
            masks.append(design_mask(replace(design, height=mode.synth_size, width=mode.synth_size,
                                             count=max(1, round(design.count * scale)), seed=int(rng.integers(2**31)))))
    return masks


def match_histogram(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Grey levels of ``image`` mapped so that its histogram follows ``reference`` (any shape)."""
    _, inverse, counts = np.unique(image.ravel(), return_inverse=True, return_counts=True)
    ref_values, ref_counts = np.unique(np.asarray(reference).ravel(), return_counts=True)
    quantiles = np.cumsum(counts) / image.size
    ref_quantiles = np.cumsum(ref_counts) / ref_counts.sum()
    return np.interp(quantiles, ref_quantiles, ref_values)[inverse].reshape(image.shape).astype(np.float32)


def raw_generator(last_checkpoint: Path) -> Generator:
    """The trained generator itself (not its moving average) from a cycle GAN's ``last.pt``."""
    from napari_nanogan.config import GeneratorConfig, ModelKind
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.models.style_unet import StyleUNet

    state = load_checkpoint(last_checkpoint, kind=ModelKind.CYCLEGAN)
    net = StyleUNet(GeneratorConfig.from_dict(state["generator_config"]))
    prefix = "mask_to_image."
    net.load_state_dict({k[len(prefix):]: v for k, v in state["state_dict"].items() if k.startswith(prefix)})
    return Generator.from_network(net, name="raw", device="cpu")


def to_samples(images, masks, prefix: str) -> list[Sample]:
    out = []
    for i, (img, m) in enumerate(zip(images, masks)):
        low, high = intensity_range(img)
        out.append(Sample(f"{prefix}{i}", img, m.astype(np.int32), low, high, "synthetic"))
    return out


def whole_ecd(labels: np.ndarray) -> np.ndarray:
    """ECD (nm) of the whole particles (not cut by the border, at least MIN_AREA_PX px)."""
    return equivalent_diameters(labels, min_area=MIN_AREA_PX, whole_only=True) * BAM_PIXEL_NM


def score(segmenter: Segmenter, held_out: list[Sample]) -> dict:
    pairs = [(s.labels, segment(s.image, segmenter, info_bar=None).labels) for s in held_out]
    out = summarize(pairs)
    out.pop("per_image")
    truth = np.concatenate([whole_ecd(t) for t, _ in pairs])
    pred = np.concatenate([whole_ecd(p) for _, p in pairs])
    d50_t = float(np.median(truth))
    d50_p = float(np.median(pred)) if pred.size else float("nan")
    out.update(d50_truth_nm=d50_t, d50_nm=d50_p, d50_error=(d50_p - d50_t) / d50_t, particles=int(pred.size))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def contrast(samples: list[Sample]) -> dict:
    """Particle-background contrast in background standard deviations, and the background's
    spread, of robustly normalised images (medians over the images)."""
    from napari_nanogan.normalize import normalize

    cnr, noise = [], []
    for s in samples:
        img = normalize(s.image, s.low, s.high)
        fg, bg = img[s.labels > 0], img[s.labels == 0]
        if fg.size and bg.size:
            cnr.append((np.median(fg) - np.median(bg)) / (bg.std() + 1e-6))
            noise.append(bg.std())
    return {"cnr": round(float(np.median(cnr)), 3), "background_sd": round(float(np.median(noise)), 4)}


def run_stage(path: Path, fn):
    """Cache a stage's JSON result; the training loops resume from their own checkpoints."""
    if path.exists():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    result = fn()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")  # an interrupted write leaves no half file to be read as done
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return result


def train_seg(train: dict, out: Path, mode: Mode, seed: int, *, steps: int | None = None, init_from=None) -> Path:
    steps = steps or mode.seg_steps
    config = TrainConfig(steps=steps, batch_size=4, patch_size=mode.patch, lr=1e-3, warmup_steps=min(50, steps),
                         val_every=10**9, checkpoint_every=max(50, steps // 4), seed=seed)
    for rec in train_segmenter(train, [], out_dir=out, config=config, model_config=SegmenterConfig(),
                               init_from=init_from):
        if rec.step % 100 == 0:
            log(f"  {out.name}: step {rec.step}/{steps} loss {rec.losses.get('total', float('nan')):.3f}")
    return out / "best.pt"


def one_cell(k, seed: int, mode: Mode, real_train: list[Sample], held_out: list[Sample], work: Path,
             postprocess: PostprocessConfig, arms) -> dict:
    cell = work / f"k{k}-s{seed}"
    real = choose(real_train, k, seed)
    log(f"k={k} seed={seed}: {[s.name for s in real]}")
    results = {}

    def evaluate(weights: Path) -> dict:
        seg = Segmenter.from_checkpoint(weights, device="cpu")
        seg = Segmenter.from_network(seg.network, postprocess=postprocess, device="cpu")
        return score(seg, held_out)

    synthetic = {}

    def synthetic_pairs(kind: str) -> list[Sample]:
        """The cycle GAN (trained once per cell) and its synthetic pairs, built on first use."""
        if not synthetic:
            gan_dir = cell / "gan"

            def gan():
                config = GanTrainConfig(steps=mode.gan_steps, patch_size=mode.patch,
                                        checkpoint_every=max(25, mode.gan_steps // 10), seed=seed)
                t0 = time.perf_counter()
                for rec in train_cyclegan(real, out_dir=gan_dir, config=config):
                    if rec.step % 50 == 0:
                        log(f"  gan: step {rec.step}/{mode.gan_steps} {rec.seconds_per_step:.2f} s/step")
                return {"steps": mode.gan_steps, "train_seconds": round(time.perf_counter() - t0, 1)}

            results["gan"] = run_stage(cell / "gan.json", gan)
            generator = Generator.from_checkpoint(gan_dir / "generator.pt", device="cpu")
            masks = synthetic_masks(real, mode, seed)
            images = [synthesize(m, generator, seed=1000 * seed + i) for i, m in enumerate(masks)]
            reference = np.concatenate([s.image.ravel() for s in real])
            synthetic["plain"] = to_samples(images, masks, "synth")
            synthetic["hist"] = to_samples([match_histogram(im, reference) for im in images], masks, "synth-hist")
            raw = raw_generator(gan_dir / "last.pt")
            synthetic["raw"] = to_samples([synthesize(m, raw, seed=1000 * seed + i) for i, m in enumerate(masks)], masks,
                                          "synth-raw")
        return synthetic[kind]

    plans = {
        "real": lambda: {"real": real},
        "mixed": lambda: {"real": real, "synthetic": synthetic_pairs("plain")},
        # sample_batch draws domains uniformly: three names for the real images give 3:1
        "mixed25": lambda: {"real": real, "real_b": real, "real_c": real, "synthetic": synthetic_pairs("plain")},
        "mixed_hist": lambda: {"real": real, "synthetic": synthetic_pairs("hist")},
        "synthetic": lambda: {"synthetic": synthetic_pairs("plain")},
        "mixed_raw": lambda: {"real": real, "synthetic": synthetic_pairs("raw")},
        "synthetic_raw": lambda: {"synthetic": synthetic_pairs("raw")},
    }
    for arm in arms:
        def stage(arm=arm):
            if arm == "gan_segmenter":
                synthetic_pairs("plain")
                return evaluate(cell / "gan" / "segmenter.pt")
            if arm == "pretrain":
                half = mode.seg_steps // 2
                first = train_seg({"synthetic": synthetic_pairs("plain")}, cell / "seg-pretrain-synthetic", mode, seed, steps=half)
                return evaluate(train_seg({"real": real}, cell / "seg-pretrain-real", mode, seed,
                                          steps=mode.seg_steps - half, init_from=first))
            return evaluate(train_seg(plans[arm](), cell / f"seg-{arm}", mode, seed))

        results[arm] = run_stage(cell / f"{arm}.json", stage)
        log(f"  {arm}: IoU {results[arm]['iou']:.3f} F1 {results[arm]['f1']:.3f} D50 err {results[arm]['d50_error']:+.3f}")
    if "real" in arms and any(a != "real" for a in arms):
        def diagnostics():
            """Why synthetic pairs help or not: domain gap, contrast, mask statistics."""
            seg = Segmenter.from_checkpoint(cell / "seg-real" / "best.pt", device="cpu")
            seg = Segmenter.from_network(seg.network, postprocess=postprocess, device="cpu")
            out = {"contrast_real": contrast(real),
                   "mask_d50_real_nm": round(float(np.median(np.concatenate([whole_ecd(s.labels) for s in real]))), 1)}
            for kind, suffix in (("plain", ""), ("raw", "_raw")):
                synth = synthetic_pairs(kind)[:12]
                on_synth = summarize([(s.labels, segment(s.image, seg, info_bar=None).labels) for s in synth])
                out[f"real_model_on_synthetic{suffix}"] = {k: round(on_synth[k], 4) for k in ("iou", "f1", "precision", "recall")}
                out[f"contrast_synthetic{suffix}"] = contrast(synth)
            synth = synthetic_pairs("plain")
            out["mask_d50_synthetic_nm"] = round(float(np.median(np.concatenate([whole_ecd(s.labels) for s in synth]))), 1)
            return out

        results["diagnostics"] = run_stage(cell / "diagnostics.json", diagnostics)
        log(f"  diagnostics: {results['diagnostics']}")
    return {"k": k, "seed": seed, "images": [s.name for s in real], **results}


def aggregate(runs: list[dict], arms) -> list[dict]:
    rows = []
    for k in dict.fromkeys(r["k"] for r in runs):
        for arm in arms:
            vals = [r[arm] for r in runs if r["k"] == k and arm in r]
            if not vals:
                continue
            row = {"arm": arm, "k": k, "n_seeds": len(vals)}
            for metric in ("dice", "iou", "f1", "precision", "recall", "d50_error"):
                xs = np.array([v[metric] for v in vals], float)
                row[metric] = round(float(xs.mean()), 4)
                row[f"{metric}_sd"] = round(float(xs.std(ddof=1)), 4) if len(xs) > 1 else 0.0
            row["abs_d50_error"] = round(float(np.mean([abs(v["d50_error"]) for v in vals])), 4)
            rows.append(row)
    return rows


def markdown_table(result: dict) -> str:
    """The summary as a Markdown table (mean ± SD over seeds), plus the diagnostics per run."""
    lines = ["| k | arm | Dice | IoU | F1 (IoU 0.5) | precision | recall | D50 error |", "|---|---|---|---|---|---|---|---|"]
    for r in result["summary"]:
        cell = lambda m: f"{r[m]:.3f} ± {r[m + '_sd']:.3f}"  # noqa: E731
        lines.append(f"| {r['k']} | {r['arm']} | {cell('dice')} | {cell('iou')} | {cell('f1')} | {cell('precision')} | "
                     f"{cell('recall')} | {r['d50_error']:+.3f} ± {r['d50_error_sd']:.3f} |")
    diag = [(r["k"], r["seed"], r["diagnostics"]) for r in result["runs"] if "diagnostics" in r]
    if diag:
        lines += ["", "| k | seed | real-trained model on synthetic pairs, IoU / F1: EMA / raw generator | "
                  "CNR real / EMA / raw | background SD real / EMA / raw | mask D50 real / synthetic (nm) |",
                  "|---|---|---|---|---|---|"]
        for k, seed, d in diag:
            on, on_raw = d["real_model_on_synthetic"], d.get("real_model_on_synthetic_raw", {"iou": np.nan, "f1": np.nan})
            c, ce, cr = d["contrast_real"], d["contrast_synthetic"], d.get("contrast_synthetic_raw", {"cnr": np.nan, "background_sd": np.nan})
            lines.append(f"| {k} | {seed} | {on['iou']:.3f} / {on['f1']:.3f} ; {on_raw['iou']:.3f} / {on_raw['f1']:.3f} | "
                         f"{c['cnr']:.1f} / {ce['cnr']:.1f} / {cr['cnr']:.1f} | "
                         f"{c['background_sd']:.3f} / {ce['background_sd']:.3f} / {cr['background_sd']:.3f} | "
                         f"{d['mask_d50_real_nm']:.0f} / {d['mask_d50_synthetic_nm']:.0f} |")
    return "\n".join(lines)


def plot(result: dict, path) -> Path:
    """Score vs k per arm, mean and SD over seeds (foreground IoU, instance F1, |D50 error|)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["summary"]
    ks = list(dict.fromkeys(r["k"] for r in rows))
    xpos = {k: i for i, k in enumerate(ks)}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), constrained_layout=True)
    styles = {"real": ("k", "o"), "mixed": ("tab:blue", "s"), "mixed25": ("tab:cyan", "^"), "mixed_hist": ("tab:purple", "v"),
              "pretrain": ("tab:green", "D"), "synthetic": ("tab:red", "x"), "gan_segmenter": ("tab:orange", "*"),
              "mixed_raw": ("tab:brown", "P"), "synthetic_raw": ("tab:pink", "X")}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    for ax, (metric, label) in zip(axes, (("iou", "foreground IoU"), ("f1", "instance F1 (IoU 0.5)"),
                                          ("d50_error", "D50 error (segmented / true - 1)"))):
        for j, arm in enumerate(arms):
            sub = [r for r in rows if r["arm"] == arm]
            x = np.array([xpos[r["k"]] for r in sub]) + (j - (len(arms) - 1) / 2) * 0.06
            colour, marker = styles.get(arm, ("grey", "."))
            ax.errorbar(x, [r[metric] for r in sub], yerr=[r[f"{metric}_sd"] for r in sub], color=colour, marker=marker,
                        capsize=3, linewidth=2.2 if arm == "real" else 1.2, label=arm)
        if metric == "d50_error":
            ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_xlabel("real annotated training images (k)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    n_seeds = max(r["n_seeds"] for r in rows)
    fig.suptitle(f"BAM SEM, {result['held_out']} held out; mean ± SD over {n_seeds} seeds ({result['mode']} mode)",
                 fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(prog="python -m bench.data_efficiency", description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=list(MODES), default="quick")
    ap.add_argument("--data-root", default=str(root.parent / "shared" / "data"))
    ap.add_argument("--work", default=None, help="folder for checkpoints and stage results (default runs/data-efficiency-MODE)")
    ap.add_argument("--json", default=None, help="also write the result here (default bench/results/data_efficiency_MODE.json)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--figure", default=None, help="also plot score vs k here (PNG)")
    ap.add_argument("--plot-only", default=None, metavar="JSON",
                    help="print an earlier result as a Markdown table (and plot it with --figure)")
    args = ap.parse_args(argv)
    if args.plot_only:
        result = json.loads(Path(args.plot_only).read_text())
        print(markdown_table(result))
        if args.figure:
            print(plot(result, args.figure), file=sys.stderr)
        return None
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    mode = MODES[args.mode]
    arms = [a for a in args.arms.split(",") if a]
    unknown = set(arms) - set(ARMS)
    if unknown:
        ap.error(f"unknown arms {sorted(unknown)}; choose from {', '.join(ARMS)}")
    work = Path(args.work or root / "runs" / f"data-efficiency-{args.mode}")
    splits = shared_splits(args.data_root).get("bam")
    if splits is None:
        sys.exit(f"no BAM data under {args.data_root}/bam_tio2_sem")
    real_train = load_samples(splits["train"], domain="bam")
    held_out = load_samples(splits["val"] + splits["test"], domain="bam")[: mode.n_eval]
    # fixed for every arm (chosen on the val split once); no confidence cut: it is calibrated for default's network only
    postprocess = replace(load_segmenter("default").postprocess, min_confidence=0.0)
    # the code that runs is the code at the start (stages reused from earlier runs keep their own)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root, check=False).stdout.strip()
    t0 = time.perf_counter()
    runs = [one_cell(k, seed, mode, real_train, held_out, work, postprocess, arms) for k in mode.ks for seed in mode.seeds]
    out = {
        "mode": args.mode, "settings": {k: v for k, v in mode.__dict__.items()}, "arms": arms,
        "held_out": f"BAM val + test splits, {len(held_out)} images", "postprocess": postprocess.to_dict(),
        "summary": aggregate(runs, arms), "runs": runs,
        "machine": machine_description(), "commit": commit, "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(out, indent=1)
    if args.figure:
        plot(out, args.figure)
    if args.mode != "smoke" or args.json:
        dest = Path(args.json or root / "bench" / "results" / f"data_efficiency_{args.mode}.json")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    print(text)
    return out


if __name__ == "__main__":
    main()
