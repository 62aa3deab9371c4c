"""Training a segmenter on folders of image-mask pairs (``nanogan train --pairs``).

A folder is a ``nanogan export`` folder (``manifest.json``) or any folder with
``images/`` and ``masks/`` whose files share stems (instance labels or binary masks).
Each folder is one domain of the batches: several folders are drawn equally often,
whatever their sizes, so a small real set is not drowned by a large synthetic one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..config import ModelKind, SegmenterConfig, TrainConfig
from ..data.datasets import Sample, load_sample
from ..io.pairs import pair_folders
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.registry import resolve_model
from .amend import SIZER_KEYS
from .data import at_model_scale
from .loop import TrainProgress
from .segmenter import train_segmenter

#: The default recipe: fine-tune the shipped model for this many steps (about 10 minutes on 2 CPU cores in bf16,
#: 12 in fp32: ``python -m bench.train_speed``).
PAIRS_RECIPE = TrainConfig(steps=1200, batch_size=4, patch_size=256, lr=3e-4, warmup_steps=50, val_every=10**9,
                           checkpoint_every=100, contact_weight=5.0)


def folder_summary(folder) -> str:
    """What ``--pairs`` takes from a folder, in words: its pairs, and the images or masks without a partner."""
    from ..io.images import list_images
    from ..io.pairs import export_folder_pairs
    from ..segmentation.wording import plural

    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        try:
            return f"{folder}: {len(export_folder_pairs(folder))} pairs (export manifest)"
        except ValueError as exc:
            return str(exc)
    if not (folder / "images").is_dir():
        return f"{folder}: no images/ folder"
    triples = pair_folders(folder / "images", folder / "masks")
    left = [len(list_images([folder / sub])) - len(triples) if (folder / sub).is_dir() else 0
            for sub in ("images", "masks")]
    extra = [f"{plural(n, what)} without a partner, left out" for n, what in zip(left, ("image", "mask")) if n > 0]
    return f"{folder}: {plural(len(triples), 'pair')}" + (f" ({'; '.join(extra)})" if extra else "")


def load_pair_folder(folder, *, domain: str | None = None) -> list[Sample]:
    """The pairs of one folder as samples; a pair that cannot be read is left out with a warning naming it."""
    import warnings

    from ..io.pairs import export_folder_pairs

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of pairs")
    domain = domain or folder.name
    exported = (folder / "manifest.json").is_file()
    if exported:
        triples = export_folder_pairs(folder, missing_ok=True)  # (a missing file: its pair left out, below)
    else:
        triples = pair_folders(folder / "images", folder / "masks") if (folder / "images").is_dir() else []
    if not triples:
        raise ValueError(f"{folder}: no pairs (expected a `nanogan export` folder, or images/ and masks/ whose "
                         "files share stems)")
    samples, unread = [], []
    for _, image, mask in triples:
        try:  # (a microscope's info bar, if any, is cropped; exported images have none)
            samples.append(load_sample(image, mask, domain=domain, crop_info_bar=not exported))
        except (ValueError, OSError) as exc:
            unread.append(str(exc).splitlines()[0] if str(exc) else f"{image}: {type(exc).__name__}")
    if not samples:
        raise ValueError(f"{folder}: none of its {len(triples)} pairs can be read ({unread[0]})")
    for reason in unread:
        warnings.warn(f"pair left out: {reason}", stacklevel=2)
    return samples


@dataclass(frozen=True)
class PairsRun:
    """Where a ``--pairs`` run keeps its checkpoints (beside the model it writes) and what it started from."""

    model_path: Path

    @property
    def run_dir(self) -> Path:
        return self.model_path.with_name(self.model_path.name + ".run")


def train_on_pairs(folders, model_path, *, config: TrainConfig = PAIRS_RECIPE, init: str | None = "default",
                   model_config: SegmenterConfig | None = None, at_model_scale_: bool = True,
                   should_stop: Callable[[], bool] = lambda: False,
                   provenance: dict | None = None) -> Iterator[TrainProgress]:
    """Train a segmenter on the pairs of ``folders``; yields progress, writes ``model_path`` at the end.

    ``init``: a segmenter name or checkpoint to start from (its post-processing, size model
    and confidence are kept), or None to start from random weights (``model_config``).
    The run folder ``<model_path>.run`` holds ``last.pt``; the same call resumes it.
    """
    domains = {}
    for k, folder in enumerate(folders):
        name = Path(folder).name or f"pairs{k}"
        samples = load_pair_folder(folder, domain=name)
        domains[name if name not in domains else f"{name}-{k}"] = samples
    if not any(s.labels.any() for samples in domains.values() for s in samples):
        raise ValueError(f"every mask in {', '.join(map(str, folders))} is empty: no particle to learn from "
                         "(images without particles teach only beside pairs that have some)")
    init_data = None
    if init is not None:
        init_path = resolve_model(init, kind=ModelKind.SEGMENTER)
        init_data = load_checkpoint(init_path, kind=ModelKind.SEGMENTER)
        model_config = SegmenterConfig.from_dict(init_data["config"])
    model_config = model_config or SegmenterConfig(depth=5)
    if at_model_scale_:
        domains = {k: [at_model_scale(s) for s in v] for k, v in domains.items()}
    run = PairsRun(Path(model_path))
    yield from train_segmenter(domains, [], out_dir=run.run_dir, config=config, model_config=model_config,
                               init_from=None if init is None else init_path, should_stop=should_stop,
                               provenance={**(provenance or {}), "pairs": {k: len(v) for k, v in domains.items()},
                                           "init": str(init)})
    if not (run.run_dir / "best.pt").is_file():
        return  # stopped before the end: resume with the same call
    data = load_checkpoint(run.run_dir / "best.pt", kind=ModelKind.SEGMENTER)
    data.pop("format_version")
    for key in ("postprocess", "size_model", "coarse_sizing", "confidence_model", "final_confidence_model",
                *SIZER_KEYS):
        if init_data is not None and init_data.get(key):
            data[key] = init_data[key]  # the starting model's tuning, as fine-tuning keeps it
    save_checkpoint(run.model_path, data)
