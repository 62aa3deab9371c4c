import pytest

from napari_nanogan.models import registry as pretrained
from napari_nanogan.models.checkpoint import CheckpointError
from napari_nanogan.models.registry import ModelNotFoundError, RemoteModel, resolve_model
from napari_nanogan.segmentation import load_segmenter


def test_path_resolves(tiny_checkpoint):
    assert resolve_model(tiny_checkpoint) == tiny_checkpoint
    seg = load_segmenter(tiny_checkpoint, device="cpu")
    assert seg.config.base_channels == 4


def test_unknown_name_lists_choices():
    with pytest.raises(ModelNotFoundError, match="available"):
        resolve_model("does-not-exist")


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    with pytest.raises(CheckpointError):
        load_segmenter(bad)


def test_checkpoint_refusals_are_one_safe_line(tmp_path):
    """An empty file crashed the message code; torch's advice to retry with weights_only=False is never passed on."""
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"format_version": 1, "state_dict": {}, "x": Payload()}, tmp_path / "evil.pt")
    (tmp_path / "folder.pt").mkdir()
    for name, reason in (("empty.pt", "the file is empty"), ("evil.pt", "holds Python objects"),
                         ("folder.pt", "is a folder")):
        with pytest.raises((CheckpointError, ModelNotFoundError), match=reason) as info:
            load_segmenter(tmp_path / name)
        text = str(info.value)
        assert "\n" not in text and "weights_only" not in text and "trust" not in text


def test_a_name_never_reaches_outside_the_models_folder(tmp_path, monkeypatch, tiny_checkpoint):
    import shutil

    monkeypatch.setenv(pretrained.USER_MODELS_ENV, str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_checkpoint, tmp_path / "outside.pt")
    with pytest.raises(ModelNotFoundError, match="not a model name"):
        resolve_model("../outside")
    shutil.copy(tiny_checkpoint, tmp_path / "models" / "mine.pt")
    assert resolve_model("mine") == tmp_path / "models" / "mine.pt"


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "cache"))
    assert pretrained.cache_dir() == tmp_path / "cache"


def test_remote_model_offline_error_is_actionable(monkeypatch, tmp_path):
    import pooch

    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(pretrained.REMOTE_MODELS, "big", RemoteModel(url="https://example.invalid/big.pt", sha256="0" * 64))

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("big")
    msg = str(info.value)
    assert "could not be downloaded" in msg and "sha256" in msg and pretrained.CACHE_ENV in msg


def test_remote_model_from_cache_with_matching_hash(monkeypatch, tmp_path, tiny_checkpoint):
    import shutil

    import pooch

    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    shutil.copy(tiny_checkpoint, tmp_path / "cached.pt")
    digest = pooch.file_hash(str(tmp_path / "cached.pt"))
    monkeypatch.setitem(pretrained.REMOTE_MODELS, "cached", RemoteModel(url="https://example.invalid/c.pt", sha256=digest))
    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: (_ for _ in ()).throw(AssertionError("no download expected")))
    assert resolve_model("cached") == tmp_path / "cached.pt"


def test_every_shipped_model_loads_offline_with_its_provenance():
    from napari_nanogan.models.checkpoint import load_checkpoint
    from napari_nanogan.models.registry import SHIPPED_GENERATORS, SHIPPED_SEGMENTERS, shipped_path

    for kind, table in (("segmenter", SHIPPED_SEGMENTERS), ("generator", SHIPPED_GENERATORS)):
        for name, filename in table.items():
            path = shipped_path(filename)
            assert path.is_file(), f"{name}: {filename} missing from the package"
            # small: the 5-level default is 7.4 MB; float16 storage (half) cost EMPS val F1 0.849 -> 0.813
            assert path.stat().st_size < 8_000_000, f"{name}: shipped weights must stay small"
            data = load_checkpoint(path, kind=kind)
            assert data["provenance"].get("command") or data["provenance"].get("step"), name
            assert resolve_model(name, kind=kind) == path
