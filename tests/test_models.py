
import pytest
import torch

from napari_nanogan.config import SegmenterConfig
from napari_nanogan.models.attention_unet import AttentionUNet
from napari_nanogan.models.blocks import AttentionGate
from napari_nanogan.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("depth,base", [(2, 4), (3, 8), (4, 16)])
def test_attention_unet_shapes(depth, base):
    config = SegmenterConfig(base_channels=base, depth=depth)
    net = AttentionUNet(config).eval()
    x = torch.randn(2, 1, 8 * config.multiple, 6 * config.multiple)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, config.out_channels, x.shape[2], x.shape[3])
    assert len(net.gates) == depth - 1


def test_attention_unet_rejects_bad_sizes():
    net = AttentionUNet(SegmenterConfig(depth=4))
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 36, 64))
    with pytest.raises(ValueError):
        net(torch.zeros(1, 64, 64))


def test_attention_gate_scales_skip_between_zero_and_one():
    gate = AttentionGate(8, 8, 4)
    skip = torch.rand(1, 8, 16, 16) + 1
    out = gate(skip, torch.randn(1, 8, 16, 16))
    assert out.shape == skip.shape
    assert torch.all(out <= skip) and torch.all(out >= 0)
    # the gate depends on the gating signal: two different signals give different outputs
    assert not torch.allclose(gate(skip, torch.randn(1, 8, 16, 16)), gate(skip, torch.randn(1, 8, 16, 16)))


def test_checkpoint_round_trip(tmp_path):
    config = SegmenterConfig(base_channels=4, depth=3)
    net = AttentionUNet(config)
    path = save_checkpoint(tmp_path / "m.pt", {"kind": "segmenter", "config": config.to_dict(), "state_dict": net.state_dict(),
                                               "provenance": {"data": ["a", "b"], "score": 0.5}})
    data = load_checkpoint(path, kind="segmenter")
    assert data["format_version"] == 1
    restored = AttentionUNet(SegmenterConfig.from_dict(data["config"]))
    restored.load_state_dict(data["state_dict"])
    for a, b in zip(net.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="not a 'generator'"):
        load_checkpoint(path, kind="generator")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_rejects_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "state_dict": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="only plain data"):
        load_checkpoint(path)


def test_checkpoint_rejects_garbage_and_future_versions(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    future = tmp_path / "future.pt"
    torch.save({"format_version": 99, "state_dict": {}}, future)
    with pytest.raises(CheckpointError, match="upgrade"):
        load_checkpoint(future)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="missing format_version"):
        load_checkpoint(plain)


def test_bundle_checkpoint_serves_both_kinds(tmp_path):
    seg = {"kind": "segmenter", "config": SegmenterConfig(base_channels=4, depth=3).to_dict(),
           "state_dict": AttentionUNet(SegmenterConfig(base_channels=4, depth=3)).state_dict()}
    path = save_checkpoint(tmp_path / "b.pt", {"kind": "bundle", "segmenter": seg, "card": {"name": "mine"}})
    assert load_checkpoint(path, kind="segmenter")["config"]["base_channels"] == 4
    with pytest.raises(CheckpointError, match="without a 'generator'"):
        load_checkpoint(path, kind="generator")
