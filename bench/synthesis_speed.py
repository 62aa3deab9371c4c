"""Synthesis speed, stage by stage; prints one JSON object.

    python -m bench.synthesis_speed [--model default] [--repeats 5] [--threads N]

A procedural 1024 x 768 mask (about 150 particles of 24 px, the package's own
``particle_labels``: no data needed) goes through ``synthesize`` ``--repeats`` times
after one warm-up, with seeds 0, 1, ...:

- ``seconds_1024x768``: median of the whole ``synthesize`` call (target: <= 1 s);
- ``stages``: medians of its parts, timed separately on the same inputs: ``maps`` (mask
  validation and the generator's input maps), ``network`` (noise, style and the Style
  U-Net), ``postprocess`` (the generator's finishing, ``apply_finishing``: blur,
  calibration, each particle's contrast, SEM noise), ``texture`` (the learned substrate
  texture, when the generator has one), with ``texture_network`` (its TextureNet alone) inside it, and
  ``particle_texture`` (the learned particle texture, when it has one);
- ``precision``: what the networks ran in (bf16 on CPUs with native bf16 kernels;
  ``NANOGAN_PRECISION=fp32`` for the fp32 timing);
- ``matmul_74gflop_seconds``: 74 GFLOP of fp32 matmul on the same machine in the same run
  (``bench.bench_segment``'s reference), and ``synthesis_vs_matmul``, the ratio of
  ``seconds_1024x768`` to it: the speed goal's measure (at most 2.0);
- ``peak_rss_mb``: the process's resident high-water mark (Linux ``VmHWM``) at the end;
- with ``--large N``: ``large`` (one ``synthesize`` call on a procedural N x N mask of
  24-px particles, in a fresh process: its seconds and the process's peak resident memory).

    python -m bench.synthesis_speed --large 4096
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for k in range(repeats):
        t = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.synthesis_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--large", type=int, default=0, metavar="N",
                        help="also one synthesis of an N x N mask, in a fresh process (seconds, peak memory)")
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # the fresh process of --large
    args = parser.parse_args(argv)
    if args.one:
        return _one_large(args.model, args.one)

    import torch

    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.synthesis import load_generator, mask_maps, synthesize
    from napari_nanogan.synthesis.finishing import apply_finishing
    from napari_nanogan.synthesis.texture import substrate_weight

    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    gen = load_generator(args.model, device="cpu")
    load_s = time.perf_counter() - t
    mask = particle_labels((768, 1024), n_particles=150, mean_diameter=24, seed=0)
    synthesize(mask, gen, seed=0)  # warm-up

    result = {"model": args.model, "mask": "particle_labels((768, 1024), n_particles=150, mean_diameter=24, seed=0)",
              "particles": int(len(np.unique(mask)) - 1), "repeats": args.repeats, "load_seconds": load_s,
              "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "precision": gen.precision,
              "has_texture": gen.texture is not None, "has_particle_texture": gen.particle_texture is not None}
    result["seconds_1024x768"] = _median_seconds(lambda k: synthesize(mask, gen, seed=k), args.repeats)
    result["seconds_1024x768_no_postprocess"] = _median_seconds(
        lambda k: synthesize(mask, gen, seed=k, raw=True), args.repeats)

    maps = mask_maps(mask)
    raw = synthesize(mask, gen, seed=0, raw=True)
    post = apply_finishing(raw, gen.finishing, 0, mask)
    stages = {"maps": _median_seconds(lambda k: mask_maps(mask), args.repeats)}
    stages["network"] = result["seconds_1024x768_no_postprocess"] - stages["maps"]
    stages["postprocess"] = _median_seconds(lambda k: apply_finishing(raw, gen.finishing, k, mask), args.repeats)
    if gen.texture is not None:
        labels = maps[0] > 0.5
        stages["texture"] = _median_seconds(lambda k: gen.texture.apply(post, labels, k), args.repeats)
        weight = substrate_weight(labels, gen.texture.config.margin)
        net = gen.texture.sampler()

        def texture_net(k):
            with torch.inference_mode():
                net.sample(1, *weight.shape, torch.Generator().manual_seed(k), need=weight > 0)

        stages["texture_network"] = _median_seconds(texture_net, args.repeats)
    if gen.particle_texture is not None:
        labels = maps[0] > 0.5
        stages["particle_texture"] = _median_seconds(lambda k: gen.particle_texture.apply(post, labels, k), args.repeats)
    result["stages"] = stages
    from bench.bench_segment import matmul_seconds

    result["matmul_74gflop_seconds"] = matmul_seconds(args.repeats)
    result["synthesis_vs_matmul"] = round(result["seconds_1024x768"] / result["matmul_74gflop_seconds"], 2)
    result["peak_rss_mb"] = _peak_rss_mb()
    if args.large:
        import sys
        from pathlib import Path

        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        run = subprocess.run([sys.executable, "-m", "bench.synthesis_speed", "--model", args.model, "--one", str(args.large)],
                             capture_output=True, text=True, check=True, cwd=root, env=env)
        result["large"] = json.loads(run.stdout.strip().splitlines()[-1])
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))


def _one_large(model: str, side: int) -> None:
    """One synthesis of a procedural side x side mask (24-px particles at the 1024 x 768 mask's density)."""
    from napari_nanogan.data.procedural import particle_labels
    from napari_nanogan.synthesis import load_generator, synthesize

    gen = load_generator(model, device="cpu")
    mask = particle_labels((side, side), n_particles=int(150 * side * side / (1024 * 768)), mean_diameter=24, seed=0)
    t = time.perf_counter()
    synthesize(mask, gen, seed=0)
    print(json.dumps({"side": side, "seconds": round(time.perf_counter() - t, 2), "peak_rss_mb": _peak_rss_mb(),
                      "precision": gen.precision}))


if __name__ == "__main__":
    main()
