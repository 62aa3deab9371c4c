"""Adaptation to a new domain: do synthetic pairs from an adapted generator beat fine-tuning on
the k real images alone? Prints JSON.

    python -m bench.adaptation --out runs/adaptation            # k = 1, 2, 5; seeds 0, 1, 2 (2-core CPU: ~1.5 h)
    python -m bench.adaptation --out runs/adaptation --smoke    # seconds, in runs/adaptation/smoke: checks the pipeline
    python -m bench.adaptation --plot-only bench/results/adaptation_bam.json --figure docs/images/adaptation_bam.png

The new domain is the BAM TiO2 SEM fields, for models that never saw them or anything like
them: the segmenter ``--base`` is ``default``'s recipe trained without any image of bright
particles (``python -m bench.leave_family_out --family bright``), and the generator starts
from the shipped bright-field TEM generator (``--generator tem``, trained on EMPS TEM images
only), its output inverted (a TEM generator draws dark particles; the cycle GAN's
``invert_init_generator``). For each k and seed, k of the 21 BAM training fields are the
user's annotations (the seed picks which); the 6 BAM test fields are scored, never trained on.

Arms, both starting from ``--base`` with the same segmenter recipe and step budget
(``nanogan train --pairs``'s, ``--steps``):

- ``real``: the k real pairs only (fine-tuning on what the user annotated).
- ``synthetic``: the product's synthetic path. The cycle GAN (generator + segmenter) is
  fine-tuned on the k pairs for ``--gan-steps`` (``nanogan finetune --preset standard``'s
  stage two), its finishing (blur, grey-level calibration, noise) and the starting
  generator's textures are refitted on the k pairs (``--raw-generator``: not), its
  generator draws ``--n`` images of each annotated mask and of ``--n`` designer masks fitted to it (``nanogan export``'s code path), and the segmenter is trained
  on the real folder and the synthetic folder together (``nanogan train --pairs REAL SYN``:
  each folder half of the patches). The GAN steps are this arm's extra cost; the seconds
  of every stage are reported.
- ``home`` (``--arms real,synthetic,home``; a diagnostic, not a fair arm): as ``synthetic``,
  but the pairs are drawn by ``--home-generator`` (``default``, trained on BAM fields) without
  any adaptation: what pairs from a generator that already knows the domain would give,
  which separates the generator's quality from the value of synthetic pairs as such.

Scores (as ``nanogan segment`` runs, the diameter estimated): foreground Dice, instance F1 at
IoU 0.5, precision, recall, panoptic quality, whole-particle D50 error (mean and sample SD
over seeds). Every stage writes into ``--out`` and is skipped when run again, so an
interrupted study resumes where it stopped; ``--out`` remembers the settings it was made
with and refuses others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from napari_nanogan.config import (GanTrainConfig, GeneratorConfig, ModelKind, SegmenterConfig, TextureConfig,
                                   TextureTrainConfig)
from napari_nanogan.data.datasets import load_samples, shared_splits
from napari_nanogan.data.designer import design_mask, fit_design
from napari_nanogan.io.pairs import Pair, export_pairs
from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint
from napari_nanogan.models.registry import resolve_model
from napari_nanogan.synthesis import load_generator, synthetic_pairs
from napari_nanogan.training.amend import finish_adapted_generator
from napari_nanogan.training.cyclegan import train_cyclegan
from napari_nanogan.training.data import at_model_scale
from napari_nanogan.training.loop import machine_description
from napari_nanogan.training.texture import train_texture
from napari_nanogan.training.pairs import PAIRS_RECIPE, train_on_pairs

from .data_efficiency import BAM_PIXEL_NM, choose, run_stage
from .tstr import score

ARMS = ("real", "synthetic", "home")
METRICS = ("dice", "f1", "pq", "d50_error", "precision", "recall")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def adapt_generator(real, cell: Path, args, seed: int) -> Path:
    """The cycle GAN fine-tuned on the k pairs (at the model's particle size, as fine-tuning does)."""
    base = load_checkpoint(resolve_model(args.base, kind=ModelKind.SEGMENTER), kind=ModelKind.SEGMENTER)
    gen_path = resolve_model(args.generator, kind=ModelKind.GENERATOR)
    gen_cfg = GeneratorConfig.from_dict(load_checkpoint(gen_path, kind=ModelKind.GENERATOR)["config"])
    config = GanTrainConfig(steps=args.gan_steps, checkpoint_every=25, patch_size=128, batch_size=4,
                            contact_weight=5.0, seed=seed)
    for rec in train_cyclegan([at_model_scale(s) for s in real], out_dir=cell / "gan", config=config,
                              generator_config=gen_cfg, segmenter_config=SegmenterConfig.from_dict(base["config"]),
                              init_segmenter=resolve_model(args.base, kind=ModelKind.SEGMENTER),
                              init_generator=gen_path, invert_init_generator=args.invert):
        if rec.step % 25 == 0:
            log(f"  gan: step {rec.step}/{args.gan_steps} {rec.seconds_per_step:.2f} s/step")
    return cell / "gan" / "generator.pt"


def finish_generator(real, cell: Path, args) -> dict:
    """The adapted generator with its finishing and textures refitted on the k pairs, as fine-tuning does it."""
    raw = load_checkpoint(cell / "gan" / "generator.pt", kind=ModelKind.GENERATOR)
    base = load_checkpoint(resolve_model(args.generator, kind=ModelKind.GENERATOR), kind=ModelKind.GENERATOR)
    small = [at_model_scale(s) for s in real]
    images, labels = [np.asarray(s.image, np.float32) for s in small], [s.labels for s in small]
    if args.texture_steps:  # a substrate texture learned from the k images (the starting generator has none)
        config = TextureTrainConfig(steps=args.texture_steps, checkpoint_every=max(100, args.texture_steps // 4))
        for rec in train_texture(images, labels, out_dir=cell / "texture", config=config,
                                 texture_config=TextureConfig(margin=1)):
            if rec.step % 250 == 0:
                log(f"  texture: step {rec.step}/{args.texture_steps} {rec.seconds_per_step:.2f} s/step")
        base = {**base, "substrate_texture": load_checkpoint(cell / "texture" / "texture.pt",
                                                             kind=ModelKind.SUBSTRATE_TEXTURE)}
    part = finish_adapted_generator(raw, base, images, labels)
    save_checkpoint(cell / "gan" / "generator_finished.pt", part)
    return {"generator": str(cell / "gan" / "generator_finished.pt"), "finishing": part["postprocess"]}


def synthetic_folder(real, generator_path, folder: Path, args, seed: int) -> None:
    """``--n`` images of each annotated mask and of ``--n`` designer masks fitted to it."""
    generator = load_generator(str(generator_path), device="cpu")
    masks = []
    for i, s in enumerate(real):
        masks.append((s.name, s.labels, BAM_PIXEL_NM, "annotated mask"))
        design = fit_design(s.labels, BAM_PIXEL_NM, seed=seed)
        for j in range(args.n):
            labels = design_mask(dataclasses.replace(design, seed=10_000 * seed + 100 * i + j))
            masks.append((f"{s.name}-design{j}", labels, BAM_PIXEL_NM, "designer mask fitted to the annotated one"))
    rows = []
    for name, labels, px, source in masks:
        n = args.n if source == "annotated mask" else 1
        rows.extend(synthetic_pairs([(name, labels, px, source)], generator, n=n, seed=seed, model=str(generator_path)))
    export_pairs(rows, folder, overwrite=True)


def one_cell(k: int, seed: int, train, test, out: Path, args) -> dict:
    cell = out / f"k{k}-s{seed}"
    real = choose(train, k, seed)
    log(f"k={k} seed={seed}: {[s.name for s in real]}")
    real_dir, syn_dir = cell / "real", cell / "synthetic"
    if not (real_dir / "manifest.json").is_file():
        export_pairs([Pair(s.name, np.asarray(s.image), s.labels, source="BAM training field") for s in real],
                     real_dir, overwrite=True)
    result = {"k": k, "seed": seed, "images": [s.name for s in real]}
    result["gan"] = run_stage(cell / "gan.json", lambda: {"generator": str(adapt_generator(real, cell, args, seed))})
    adapted = cell / "gan" / "generator.pt"
    if args.finishing == "refit":
        result["finish"] = run_stage(cell / "finish.json", lambda: finish_generator(real, cell, args))
        adapted = cell / "gan" / "generator_finished.pt"
    result["export"] = run_stage(cell / "export.json", lambda: (
        synthetic_folder(real, adapted, syn_dir, args, seed)
        or {"pairs": len(json.loads((syn_dir / "manifest.json").read_text())["pairs"])}))
    folders = {"real": [real_dir], "synthetic": [real_dir, syn_dir], "home": [real_dir, cell / "synthetic-home"]}
    if "home" in args.arms:
        result["export_home"] = run_stage(cell / "export-home.json", lambda: (
            synthetic_folder(real, args.home_generator, cell / "synthetic-home", args, seed)
            or {"generator": args.home_generator}))
    for arm in args.arms:
        def stage(arm=arm):
            model = cell / f"{arm}.pt"
            config = dataclasses.replace(PAIRS_RECIPE, steps=args.steps, seed=seed,
                                         checkpoint_every=max(25, args.steps // 4))
            t0 = time.perf_counter()
            for rec in train_on_pairs(folders[arm], model, config=config, init=args.base):
                if rec.step % 100 == 0:
                    log(f"  {arm}: step {rec.step}/{args.steps}")
            return {"train_seconds": round(time.perf_counter() - t0, 1), **score(model, test)}

        result[arm] = run_stage(cell / f"{arm}.json", stage)
        if "recall" not in result[arm] and (cell / f"{arm}.pt").is_file():  # scored before precision/recall were kept
            result[arm] = {**result[arm], **score(cell / f"{arm}.pt", test)}
            (cell / f"{arm}.json").write_text(json.dumps(result[arm], indent=1))
        log(f"  {arm}: " + " ".join(f"{m} {result[arm][m]:+.3f}" for m in METRICS))
    for arm in ARMS:  # an arm run earlier for this cell (e.g. home, for one k only) is reported too
        if arm not in result and (cell / f"{arm}.json").is_file():
            result[arm] = json.loads((cell / f"{arm}.json").read_text())
    return result


def substrate_particles(model_path: Path, test) -> dict:
    """How many predicted particles (16 px or more) lie mostly (over half their area) outside the annotated foreground."""
    from napari_nanogan.segmentation import Segmenter, segment
    from napari_nanogan.segmentation.sizing import CoarseSizing

    model = Segmenter.from_checkpoint(model_path, device="cpu")
    if not (model.size_model or model.coarse_sizing):
        model.coarse_sizing = CoarseSizing()  # as tstr.score does
    found = outside = 0
    for s in test:
        labels = segment(s.image, model, diameter="auto", info_bar=None).labels
        areas = np.bincount(labels.ravel())
        inside = np.bincount(labels.ravel(), weights=(s.labels > 0).ravel(), minlength=areas.size)
        big = np.flatnonzero(areas >= 16)
        big = big[big > 0]
        found += big.size
        outside += int((inside[big] < 0.5 * areas[big]).sum())
    return {"predicted": int(found), "mostly_on_substrate": outside}


def summarize_runs(runs: list[dict]) -> dict:
    out = {}
    for k in sorted({r["k"] for r in runs}):
        cell = [r for r in runs if r["k"] == k]
        row = {"n_seeds": len(cell)}
        for arm in ARMS:
            have = [r for r in cell if arm in r]
            if not have:
                continue
            row[arm] = {m: {"mean": round(float(np.mean([r[arm][m] for r in have])), 4),
                            "sd": round(float(np.std([r[arm][m] for r in have], ddof=1)), 4) if len(have) > 1 else 0.0} for m in METRICS}
            if arm != "real":
                row[f"{arm}_minus_real"] = {m: {
                    "mean": round(float(np.mean([r[arm][m] - r["real"][m] for r in have])), 4),
                    "per_seed": [round(r[arm][m] - r["real"][m], 4) for r in have]} for m in ("dice", "f1", "pq")}
        out[str(k)] = row
    return out


def plot(results: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    ks = sorted(int(k) for k in results["summary"])
    base = results.get("base", {})
    for ax, metric, label in zip(axes, ("f1", "dice"), ("instance F1 at IoU 0.5", "foreground Dice")):
        for arm, colour in zip(ARMS, ("tab:blue", "tab:orange", "tab:green")):
            have = [k for k in ks if arm in results["summary"][str(k)]]
            if not have:
                continue
            mean = [results["summary"][str(k)][arm][metric]["mean"] for k in have]
            sd = [results["summary"][str(k)][arm][metric]["sd"] for k in have]
            ax.errorbar(have, mean, yerr=sd, marker="o", capsize=3, color=colour,
                        label={"real": "k real pairs", "synthetic": "k real + synthetic pairs (adapted generator)",
                               "home": "k real + synthetic pairs (generator trained on BAM)"}[arm])
            for r in results["runs"]:
                if arm in r:
                    ax.plot(r["k"], r[arm][metric], ".", color=colour, alpha=0.4)
        if metric in base:
            ax.axhline(base[metric], color="grey", ls="--", lw=1, label="base, before training")
        ax.set_xticks(ks)
        ax.set_xlabel("annotated BAM fields (k)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("New domain (BAM SEM) for models that never saw it: 6 test fields, mean ± SD over seeds", fontsize=9)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(prog="python -m bench.adaptation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/adaptation", help="working folder (resumable)")
    ap.add_argument("--base", default="runs/lofo/best.pt", help="the segmenter both arms start from")
    ap.add_argument("--generator", default="tem", help="the generator the cycle GAN starts from")
    ap.add_argument("--no-invert", dest="invert", action="store_false",
                    help="do not invert the starting generator's output")
    ap.add_argument("--arms", default="real,synthetic", help=f"of {', '.join(ARMS)}")
    ap.add_argument("--home-generator", default="default", help="the generator of the home arm")
    ap.add_argument("--ks", default="1,2,5")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=300, help="segmenter steps, each arm")
    ap.add_argument("--gan-steps", type=int, default=150, help="cycle-GAN steps of the synthetic path")
    ap.add_argument("--raw-generator", dest="finishing", action="store_const", const="raw", default="refit",
                    help="export with the cycle GAN's network output as it is (no blur, calibration, noise or "
                         "textures), as fine-tuning did before they were refitted on the annotated images")
    ap.add_argument("--texture-steps", type=int, default=0,
                    help="also learn a substrate texture from the k images for this many steps (0: none)")
    ap.add_argument("--n", type=int, default=3, help="synthetic images per annotated mask, and designer masks per mask")
    ap.add_argument("--smoke", action="store_true", help="a few steps, k = 1, one seed, 2 test fields")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--plot-only", default=None, help="redraw the figure from a results JSON")
    ap.add_argument("--count-substrate", default=None, metavar="CELL[,CELL]",
                    help="for trained cells (e.g. k2-s1): count each arm's predicted particles on the substrate")
    ap.add_argument("--figure", default=None)
    args = ap.parse_args(argv)
    if args.plot_only:
        plot(json.loads(Path(args.plot_only).read_text()), Path(args.figure or "adaptation.png"))
        return None
    args.arms = args.arms.split(",")
    if not set(args.arms) <= set(ARMS) or "real" not in args.arms:
        ap.error(f"--arms: real and any of {', '.join(ARMS[1:])}")
    if args.count_substrate:
        test = load_samples(shared_splits(args.data_root)["bam"]["test"], domain="bam")
        counts = {cell: {arm: substrate_particles(Path(args.out) / cell / f"{arm}.pt", test) for arm in args.arms
                         if (Path(args.out) / cell / f"{arm}.pt").is_file()} for cell in args.count_substrate.split(",")}
        text = json.dumps(counts, indent=1)
        if args.json:
            Path(args.json).write_text(text + "\n")
        print(text)
        return counts
    if args.smoke:
        args.ks, args.seeds, args.steps, args.gan_steps, args.n = "1", "0", 2, 2, 1
    out = Path(args.out) / ("smoke" if args.smoke else "")
    settings = {k: getattr(args, k) for k in ("base", "generator", "invert", "steps", "gan_steps", "n", "smoke",
                                              "finishing", "texture_steps")}
    if (out / "settings.json").is_file():
        made = {"finishing": "raw", "texture_steps": 0, **json.loads((out / "settings.json").read_text())}  # older studies: raw
        if made != settings:
            ap.error(f"{out} holds a study made with {made}; give another --out for {settings}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings))
    splits = shared_splits(args.data_root)
    train = load_samples(splits["bam"]["train"], domain="bam")
    test = load_samples(splits["bam"]["test"], domain="bam")[: 2 if args.smoke else None]
    base = run_stage(out / "base.json", lambda: score(resolve_model(args.base, kind=ModelKind.SEGMENTER), test))
    if "recall" not in base:  # scored before precision/recall were kept
        base = {**base, **score(resolve_model(args.base, kind=ModelKind.SEGMENTER), test)}
        (out / "base.json").write_text(json.dumps(base, indent=1))
    runs = [one_cell(int(k), int(s), train, test, out, args)
            for k in args.ks.split(",") for s in args.seeds.split(",")]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results = {"domain": f"BAM TiO2 SEM: k of the {len(train)} training fields annotated, the {len(test)} test fields scored",
               "base_segmenter": args.base, "generator": args.generator, "inverted": args.invert,
               "steps": args.steps, "gan_steps": args.gan_steps, "n": args.n, "finishing": args.finishing,
               "texture_steps": args.texture_steps, "base": base,
               "summary": summarize_runs(runs), "runs": runs, "machine": machine_description(), "commit": commit}
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.figure:
        plot(results, Path(args.figure))
    print(text)
    return results


if __name__ == "__main__":
    main()
