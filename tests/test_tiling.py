"""The tile-by-tile last stage (``models.tiling``) gives the whole-image result."""

import numpy as np
import pytest
import torch

from napari_nanogan.config import GeneratorConfig
from napari_nanogan.models.style_unet import StyleUNet
from napari_nanogan.config import TextureConfig
from napari_nanogan.models.texture import TextureNet
from napari_nanogan.models.tiling import TILE_SIDES, choose_tile, tiled_stage


def perturbed(net):
    """``net`` in eval mode with non-zero noise strengths and biases (so a wrong border or halo shows)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def whole_and_tiled(fn, channels_last):
    """``fn()`` with autograd on (the whole-image path) and under inference mode (tiles on the CPU)."""
    with torch.enable_grad():
        whole = fn().detach()
    with torch.inference_mode():
        tiled = fn()
    return whole, tiled


@pytest.mark.parametrize("shape", [(8, 16), (104, 136), (200, 264)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_style_unet_tiles_equal_the_whole_image(shape, channels_last):
    net = perturbed(StyleUNet(GeneratorConfig(base_channels=8, depth=3)))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(1, 2, *shape, generator=g).round()
    z, noise = net.sample_latents(1, generator=g), net.sample_noise(1, shape, generator=g)
    whole, tiled = whole_and_tiled(lambda: net(mask, z, noise), channels_last)
    assert tiled.shape == whole.shape
    assert torch.allclose(whole, tiled, atol=2e-5)


@pytest.mark.parametrize("cond_channels", [0, 2])
@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_texture_tiles_equal_the_whole_image_where_needed(cond_channels, upsample):
    net = perturbed(TextureNet(TextureConfig(z_channels=4, widths=(8, 8, 8, 8), cond_channels=cond_channels,
                                             upsample=upsample))).to(memory_format=torch.channels_last)
    h, w = 150, 230
    yy, xx = np.mgrid[:h, :w]
    need = ((yy - 40) ** 2 + (xx - 60) ** 2 < 20**2) | ((yy - 120) ** 2 + (xx - 200) ** 2 < 30**2)
    cond = torch.from_numpy(np.stack([need, need * 0.5]).astype(np.float32))[None] if cond_channels else None

    def sample(need=None):
        return net.sample(1, h, w, torch.Generator().manual_seed(3), cond, need=need)

    whole, tiled = whole_and_tiled(sample, True)
    assert torch.allclose(whole, tiled, atol=2e-5)
    with torch.inference_mode():
        partial = sample(need)[0, 0].numpy()
    assert np.allclose(partial[need], whole[0, 0].numpy()[need], atol=2e-5)
    assert (partial == 0).mean() > 0.5  # the tiles far from the region were skipped


def test_choose_tile_covers_the_region_at_the_least_cost():
    need = np.zeros((300, 500), bool)
    assert choose_tile(need, need.shape, 4)[1].sum() == 0
    need[10:20, 390:410] = True  # inside the 32-px tile (0, 12)
    side, tiles = choose_tile(need, need.shape, 4)
    assert side == min(TILE_SIDES) and tiles.sum() == 1  # one small tile, not a large one
    side, tiles = choose_tile(None, (256, 512), 4)
    assert side == max(TILE_SIDES) and tiles.shape == (2, 4) and tiles.all()  # everything: large tiles, least halo


def test_tiled_stage_refuses_odd_sizes():
    with pytest.raises(ValueError, match="even"):
        tiled_stage(lambda low, full, valid: full[0], [], [torch.zeros(1, 1, 9, 10)])
