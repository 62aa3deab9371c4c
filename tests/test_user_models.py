import pytest

from napari_nanogan.models import user
from napari_nanogan.models.pretrained import available_models, resolve_model
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
