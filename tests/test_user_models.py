import pytest

from napari_nanogan.models import registry as user
from napari_nanogan.models.registry import available_models, resolve_model
from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(user.USER_MODELS_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


def test_user_model_registry(models_dir, tiny_checkpoint, tmp_path):
    seg = load_checkpoint(tiny_checkpoint)
    seg.pop("format_version")
    save_checkpoint(user.user_model_path("my-tio2"), {"kind": "bundle", "segmenter": seg, "card": {}})
    assert user.list_user_models() == ["my-tio2"]
    assert user.list_user_models("segmenter") == ["my-tio2"] and user.list_user_models("generator") == []
    assert "my-tio2" in available_models("segmenter") and "my-tio2" not in available_models("generator")
    assert resolve_model("my-tio2") == models_dir / "my-tio2.pt"
    copy = user.export_user_model("my-tio2", tmp_path)
    assert copy.is_file()
    with pytest.raises(FileExistsError):
        user.export_user_model("my-tio2", tmp_path)
    user.delete_user_model("my-tio2")
    assert user.list_user_models() == []
    with pytest.raises(FileNotFoundError):
        user.delete_user_model("my-tio2")


@pytest.mark.parametrize("bad", ["", "../evil", "a/b", "x" * 80, ".hidden"])
def test_bad_names(models_dir, bad):
    with pytest.raises(ValueError, match="model name"):
        user.user_model_path(bad)


@pytest.mark.parametrize("taken", ["auto", "default", "sem-tio2"])
def test_shipped_names_are_refused(models_dir, taken):
    """Names resolve to shipped models first: a user model saved as one would be unreachable."""
    with pytest.raises(ValueError, match="belongs to a shipped model"):
        user.user_model_path(taken)


def test_listeners_hear_changes_and_are_held_weakly(tmp_path, monkeypatch):
    import gc

    from napari_nanogan.models import registry as user

    monkeypatch.setenv("NANOGAN_USER_MODELS", str(tmp_path))
    monkeypatch.setattr(user, "_listeners", [])
    heard = []

    class Panel:
        def refresh(self):
            heard.append(user.list_user_models())

    panel = Panel()
    user.on_models_changed(panel.refresh)
    (tmp_path / "a.pt").write_bytes(b"x")
    user.notify_models_changed()
    assert heard == [["a"]]
    user.delete_user_model("a")  # deleting notifies by itself
    assert heard[-1] == []
    del panel
    gc.collect()
    user.notify_models_changed()
    assert len(heard) == 2 and user._listeners == []
