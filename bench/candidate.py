"""Score a segmenter checkpoint as if it were the shipped ``default``, on the panel that chooses shipped segmenters.

    python -m bench.candidate --segmenter runs/x/conf.pt [--test]
    python -m bench.candidate                     # the shipped default itself

The checkpoint stands in for ``segmenter_default.pt`` in this process only, so ``auto`` (which
gives an image to ``sem-tio2`` or ``default``) runs as it would with the candidate shipped.
The panel, every part of it on validation images or on images the package draws:

- ``own_scale``: EMPS val at each image's own scale (``segment(..., diameter=None)``, the
  library's default): foreground Dice, instance F1;
- ``auto_val``: BAM and EMPS val through ``auto`` with the diameter estimated (what
  ``nanogan segment`` and the panel run): Dice, F1;
- ``randomized``: domain-randomised images, seeds 0-80 (``bench.randomized_images``): pooled F1;
- ``textured_matrix``: particles on a textured matrix (``bench.textured_matrix``, seeds
  0,1,2): mean F1 of its rows;
- ``satellites``: ``bench.failure_modes``' spheres with satellites: particles found (matched at IoU
  0.5) of 34, false particles, F1 (one image: an illustration);
- ``satellites_drawn``: ``bench.satellites``, 24 such images of spheres of 70-160 px (seeds 0-24):
  satellites found of those drawn, precision, false particles (the statistic).

``--test`` adds the own-scale EMPS test Dice and F1: score it once a candidate is chosen,
never to choose one. The candidate needs a size model (``nanogan fit-size``; the panel estimates
diameters) and must not borrow one from ``default`` (a ``nanogan finetune`` model does: score the
model it was tuned into instead). About 6 minutes on 2 CPU cores (8 with ``--test``). One JSON
object, with the checkpoint's sha256 and training command.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _refusal(path: Path) -> str | None:
    """Why ``path`` cannot stand in for ``default`` on the panel, or None."""
    from napari_nanogan.models.checkpoint import load_checkpoint

    if not path.is_file():
        return f"no such checkpoint: {path}"
    data = load_checkpoint(path, kind="segmenter")
    if data.get("size_reference") == "default":
        return f"{path} estimates diameters with default's size model, which it would replace: score its base model"
    if not data.get("size_model"):
        return f"{path} has no size model: run `nanogan fit-size` (and tune, fit-confidence) on it first"
    return None


@contextlib.contextmanager
def standing_in(checkpoint: str | None):
    """The shipped ``default`` replaced by ``checkpoint`` (None: left as it is) while the block runs."""
    from napari_nanogan.models import registry

    original = registry.shipped_path
    if checkpoint is not None:
        path = Path(checkpoint).resolve()
        why = _refusal(path)
        if why:
            raise SystemExit(f"python -m bench.candidate: {why}")
        shipped = registry.SHIPPED_SEGMENTERS["default"]
        registry.shipped_path = lambda filename: path if filename == shipped else original(filename)
    try:
        yield
    finally:
        registry.shipped_path = original


def _quiet(main, argv: list[str]) -> dict:
    """A bench module's ``main(argv)`` result, its own JSON line kept off stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv)


def _pick(scores: dict, *names: str) -> dict:
    return {n: round(float(scores[n]), 4) for n in names}


def panel(data_root: str, test: bool = False) -> dict:
    from bench import evaluate, failure_modes, randomized_images, satellites, textured_matrix

    scratch = tempfile.TemporaryDirectory()  # bench.evaluate's label images
    root = ["--data-root", data_root, "--save-dir", scratch.name]
    own = _quiet(evaluate.main, ["--model", "default", "--datasets", "emps", "--split", "val", *root])
    auto = _quiet(evaluate.main, ["--model", "auto", "--auto-diameter", "--split", "val", *root])
    out = {"own_scale": {"emps_val": _pick(own["emps"]["model"], "dice", "f1")},
           "auto_val": {k: _pick(auto[k]["model"], "dice", "f1") for k in ("bam", "emps")}}
    print(f"own scale and auto: {json.dumps(out)}", file=sys.stderr)
    rand = _quiet(randomized_images.main, ["--seeds", "0-80"])
    out["randomized"] = {"seeds": "0-80", "pooled_f1": rand["pooled"]["f1"]}
    matrix = _quiet(textured_matrix.main, ["--model", "default", "--seeds", "0,1,2"])
    out["textured_matrix"] = {"mean_f1": matrix["mean_f1"], "mean_false_per_image": matrix["mean_false_per_image"]}
    sat = _quiet(failure_modes.main, ["--model", "auto"])["panels"]["satellites"]
    out["satellites"] = {"particles": sat["particles"], "found": round(sat["recall"] * sat["particles"]),
                         "false_particles": sat["false_particles"], "f1": sat["f1"]}
    drawn = _quiet(satellites.main, ["--model", "auto", "--seeds", "0-24"])
    out["satellites_drawn"] = {"seeds": "0-24", **{k: drawn[k] for k in (
        "satellites", "satellites_found", "satellite_recall", "precision", "false_particles")}}
    if test:
        own_test = _quiet(evaluate.main, ["--model", "default", "--datasets", "emps", "--split", "test", *root])
        out["own_scale"]["emps_test"] = _pick(own_test["emps"]["model"], "dice", "f1")
    scratch.cleanup()
    return out


def identity(checkpoint: str | None) -> dict:
    """The file scored: its path, sha256 and the command that trained it (where its provenance says)."""
    from napari_nanogan.models import registry
    from napari_nanogan.models.checkpoint import load_checkpoint

    path = Path(checkpoint) if checkpoint else registry.shipped_path(registry.SHIPPED_SEGMENTERS["default"])
    provenance = load_checkpoint(path, kind="segmenter").get("provenance") or {}
    return {"segmenter": str(checkpoint) if checkpoint else "default (shipped)",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "command": provenance.get("command")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.candidate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--segmenter", default=None, help="checkpoint to stand in for the shipped default (default: none)")
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--test", action="store_true", help="also the own-scale EMPS test scores (never to choose)")
    args = ap.parse_args(argv)
    with standing_in(args.segmenter):
        result = {**identity(args.segmenter), **panel(args.data_root, args.test)}
    result["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
