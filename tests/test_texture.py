"""The learned substrate texture: network, compositing, training and resume, CLI."""

import numpy as np
import pytest
import tifffile
import torch

from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint
from napari_nanogan.synthesis.texture import LearnedTexture, substrate_weight
from napari_nanogan.config import TextureConfig
from napari_nanogan.models.texture import TextureNet, band_pass, lowpass_w
from napari_nanogan.config import TextureTrainConfig
from napari_nanogan.training.texture import train_texture

SMALL = TextureConfig(z_channels=4, widths=(8, 8, 8, 8), sigma=3.0)


def discs(shape=(96, 128), seed=0):
    """A mask of a few discs and a textured image of it (bright discs, speckled substrate)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k in range(1, 4):
        cy, cx = rng.integers(10, shape[0] - 10), rng.integers(10, shape[1] - 10)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = k
    image = 40 + 6 * rng.standard_normal(shape) + 100 * (labels > 0)
    return np.clip(image, 0, 255).astype(np.float32), labels


def write_pairs(folder, make, n=2):
    """``folder/im/f<k>.tif`` and ``folder/m/f<k>_m.tif``: ``n`` images from ``make(seed=k)`` and their binary masks."""
    (folder / "im").mkdir()
    (folder / "m").mkdir()
    for k in range(n):
        image, labels = make(seed=k)
        tifffile.imwrite(folder / "im" / f"f{k}.tif", image.astype(np.uint8))
        tifffile.imwrite(folder / "m" / f"f{k}_m.tif", ((labels > 0) * 255).astype(np.uint8))


def test_texture_net_shapes_and_seeds():
    net = TextureNet(SMALL)
    a = net.sample(2, 50, 70, torch.Generator().manual_seed(1))
    assert a.shape == (2, 1, 50, 70)
    assert torch.equal(a, net.sample(2, 50, 70, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, net.sample(2, 50, 70, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="upsample"):
        TextureConfig(upsample="cubic")
    with pytest.raises(ValueError, match="widths"):
        TextureConfig(widths=(8, 8))
    assert TextureConfig.from_dict(SMALL.to_dict()) == SMALL


def test_band_pass_ignores_particles_and_removes_the_level():
    image, labels = discs()
    w = torch.from_numpy(substrate_weight(labels, 3))[None, None]
    x = torch.from_numpy(image)[None, None]
    level = lowpass_w(x, w, 3.0)[0, 0].numpy()
    sub = w[0, 0].numpy() > 0
    # the bright particles (140) do not leak into the substrate's level (40)
    assert abs(np.median(level[sub]) - 40) < 2 and level[sub].max() < 60
    r = band_pass(x + 25, w, 3.0)  # a constant offset is no texture
    assert torch.allclose(r, band_pass(x, w, 3.0), atol=1e-3)
    assert float(r[0, 0][~torch.from_numpy(sub)].abs().max()) == 0
    assert substrate_weight(np.zeros((8, 8)), 3).all() and not substrate_weight(np.ones((8, 8)), 3).any()


def test_apply_changes_only_the_substrate_and_round_trips(tmp_path):
    torch.manual_seed(0)
    texture = LearnedTexture(TextureNet(SMALL))
    with torch.no_grad():  # a visible texture from the untrained network
        texture.network.out.weight.mul_(50)
    image, labels = discs()
    image = image.astype(np.uint8)
    out = texture.apply(image, labels, seed=3)
    assert out.dtype == np.uint8 and out.shape == image.shape
    near = substrate_weight(labels, SMALL.margin) == 0
    np.testing.assert_array_equal(out[near], image[near])
    far = substrate_weight(labels, SMALL.margin + 4) > 0
    assert np.abs(out[far].astype(float) - image[far]).mean() > 1
    assert abs(out[far].mean() - image[far].mean()) < 3  # the substrate keeps its level
    np.testing.assert_array_equal(out, texture.apply(image, labels, seed=3))
    assert not np.array_equal(out, texture.apply(image, labels, seed=4))
    np.testing.assert_array_equal(texture.apply(image, np.ones_like(labels), seed=3), image)  # no substrate
    with pytest.raises(ValueError, match="shape"):
        texture.apply(image, labels[:-1], seed=3)
    save_checkpoint(tmp_path / "t.pt", {"kind": "substrate-texture", **texture.to_dict()})
    data = torch.load(tmp_path / "t.pt", weights_only=True)
    np.testing.assert_array_equal(LearnedTexture.from_dict(data).apply(image, labels, 3), out)


def _train(out, steps, stop_after=None, **kw):
    images, labels = zip(*(discs(seed=s) for s in range(3)))
    config = TextureTrainConfig(steps=steps, batch_size=2, patch_size=32, checkpoint_every=100, seed=5, **kw)
    records = []
    for rec in train_texture(list(images), list(labels), out_dir=out, config=config, texture_config=SMALL, device="cpu",
                             should_stop=lambda: stop_after is not None and len(records) >= stop_after):
        records.append(rec)
    return records


def test_training_smoke_stop_and_exact_resume(tmp_path):
    straight = _train(tmp_path / "a", 4)
    assert [r.step for r in straight] == [1, 2, 3, 4]
    assert all(np.isfinite(v) for r in straight for v in r.losses.values())
    stopped = _train(tmp_path / "b", 4, stop_after=2)
    assert stopped[-1].stopped and stopped[-1].step == 2 and not (tmp_path / "b" / "texture.pt").exists()
    resumed = _train(tmp_path / "b", 4)
    assert [r.step for r in resumed] == [3, 4]
    assert resumed[-1].losses == straight[-1].losses
    a = load_checkpoint(tmp_path / "a" / "texture.pt", kind="substrate-texture")
    b = load_checkpoint(tmp_path / "b" / "texture.pt", kind="substrate-texture")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["gain"] == b["gain"] > 0
    LearnedTexture.from_dict(a)  # what tune-generator --texture embeds


def test_training_refuses_bad_input(tmp_path):
    image, labels = discs()
    with pytest.raises(ValueError, match="as many masks"):
        next(train_texture([image], [], out_dir=tmp_path))
    with pytest.raises(ValueError, match="same shape"):
        next(train_texture([image], [labels[:-1]], out_dir=tmp_path))
    with pytest.raises(ValueError, match="smaller"):
        next(train_texture([image[:40]], [labels[:40]], out_dir=tmp_path, config=TextureTrainConfig(patch_size=64)))
    with pytest.raises(ValueError, match="substrate"):
        next(train_texture([image], [np.ones_like(labels)], out_dir=tmp_path, config=TextureTrainConfig(patch_size=32)))
    with pytest.raises(ValueError, match="multiple of 8"):
        TextureTrainConfig(patch_size=36)
    _train(tmp_path / "r", 1)
    with pytest.raises(ValueError, match="another texture configuration"):
        next(train_texture([image], [labels], out_dir=tmp_path / "r", config=TextureTrainConfig(patch_size=32),
                           texture_config=TextureConfig(sigma=9.0)))


def test_generator_with_texture_keeps_particles(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.synthesis import Generator, synthesize

    torch.manual_seed(1)
    texture = LearnedTexture(TextureNet(SMALL))
    with torch.no_grad():
        texture.network.out.weight.mul_(50)
    data = load_checkpoint(tiny_generator_checkpoint, kind="generator")
    data.pop("format_version")
    save_checkpoint(tmp_path / "g.pt", {**data, "substrate_texture": texture.to_dict()})
    plain = Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu")
    textured = Generator.from_checkpoint(tmp_path / "g.pt", device="cpu")
    assert plain.texture is None and textured.texture is not None
    _, labels = discs()
    a, b = synthesize(labels, plain, seed=2), synthesize(labels, textured, seed=2)
    near = substrate_weight(labels, SMALL.margin) == 0
    np.testing.assert_array_equal(a[near], b[near])
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(synthesize(labels, textured, seed=2, raw=True),
                                  synthesize(labels, plain, seed=2, raw=True))


def test_cli_train_texture_then_embed(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.cli import main
    from napari_nanogan.synthesis import Generator

    write_pairs(tmp_path, discs)
    run = tmp_path / "run"
    assert main(["train-texture", "--images", str(tmp_path / "im"), "--masks", str(tmp_path / "m"), "--out", str(run),
                 "--steps", "2", "--batch-size", "2", "--patch-size", "32"]) == 0
    assert (run / "texture.pt").exists() and (run / "last.pt").exists()
    out = tmp_path / "g_tex.pt"
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--out", str(out), "--images",
                 str(tmp_path / "im"), "--texture", str(run / "texture.pt")]) == 0
    embedded = Generator.from_checkpoint(out, device="cpu").texture
    trained = load_checkpoint(run / "texture.pt", kind="substrate-texture")
    assert embedded is not None and embedded.gain == trained["gain"] != 1.0  # the fitted amplitude travels with it
    assert all(torch.equal(v, trained["state_dict"][k]) for k, v in embedded.network.state_dict().items())
    # the texture can be laid closer to the particles than it was trained with
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "g_m1.pt"), "--images",
                 str(tmp_path / "im"), "--texture-margin", "1"]) == 0
    closer = Generator.from_checkpoint(tmp_path / "g_m1.pt", device="cpu").texture
    assert closer.config.margin == 1 and embedded.config.margin == 3 and closer.gain == embedded.gain
    image, labels = discs(seed=5)
    ring = substrate_weight(labels, 1).astype(bool) & ~substrate_weight(labels, 3).astype(bool)  # 2-3 px out
    u8 = image.astype(np.uint8)
    assert np.array_equal(embedded.apply(u8, labels, 0)[ring], u8[ring])
    assert not np.array_equal(closer.apply(u8, labels, 0)[ring], u8[ring])
    assert np.array_equal(closer.apply(u8, labels, 0)[labels > 0], u8[labels > 0])
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "g_bad.pt"), "--images",
                 str(tmp_path / "im"), "--texture-margin", "-1"]) == 2
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--out", str(tmp_path / "g_bad.pt"),
                 "--images", str(tmp_path / "im"), "--texture-margin", "1"]) == 2
    assert not (tmp_path / "g_bad.pt").exists()
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "g_plain.pt"), "--images",
                 str(tmp_path / "im"), "--texture", "none"]) == 0
    assert Generator.from_checkpoint(tmp_path / "g_plain.pt", device="cpu").texture is None
    # a file that is not a texture is refused with a one-line reason
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "x.pt"), "--images",
                 str(tmp_path / "im"), "--texture", str(tiny_generator_checkpoint)]) == 2
    assert not (tmp_path / "x.pt").exists()
    assert main(["train-texture", "--images", str(tmp_path / "im"), "--masks", str(tmp_path / "m"), "--out",
                 str(tmp_path / "bad"), "--patch-size", "30"]) == 2


def test_fit_gain_matches_the_real_residual_spread():
    torch.manual_seed(2)
    texture = LearnedTexture(TextureNet(SMALL))
    pairs = [discs(seed=s) for s in range(2)]
    gain = texture.fit_gain([im for im, _ in pairs], [lab for _, lab in pairs])
    assert gain > 0 and texture.gain == gain
    w = substrate_weight(pairs[0][1], SMALL.margin)
    real = band_pass(torch.from_numpy(pairs[0][0])[None, None], torch.from_numpy(w)[None, None], SMALL.sigma)[0, 0].numpy()
    assert texture.residual(w, 0)[w > 0].std() == pytest.approx(real[w > 0].std(), rel=0.25)
    assert LearnedTexture.from_dict(texture.to_dict()).gain == gain
    with pytest.raises(ValueError, match="no substrate"):
        texture.fit_gain([pairs[0][0]], [np.ones_like(pairs[0][1])])


@pytest.mark.parametrize("shape", [(768, 1024), (101, 77), (33, 250)])
def test_coarse_gaussian_matches_the_full_filter(shape):
    """From sigma 8 px on, ``gauss_zero`` works on a 4x coarser grid; it must stay the torch filter's twin."""
    from scipy import ndimage as ndi

    from napari_nanogan.models.texture import blur_zero, gaussian_kernel
    from napari_nanogan.synthesis.texture import gauss_zero

    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, shape).astype(np.float32)  # the worst case: white noise
    weight = ndi.binary_opening(rng.uniform(size=shape) > 0.3, iterations=2).astype(np.float32)
    for x, tol in ((noise, 0.7), (noise * weight, 0.7), (weight, 0.002)):
        full = ndi.gaussian_filter(x, 16, mode="constant", cval=0.0, radius=48)
        assert np.abs(gauss_zero(x, 16) - full).max() < tol
    torch_twin = blur_zero(torch.from_numpy(weight)[None, None], gaussian_kernel(16.0))[0, 0].numpy()
    assert np.abs(gauss_zero(weight, 16) - torch_twin).max() < 0.002
    # below 8 px it is the full filter itself
    assert np.allclose(gauss_zero(noise, 3), ndi.gaussian_filter(noise, 3, mode="constant", cval=0.0, radius=9))


def test_inference_fast_paths_match_the_training_paths():
    """Under no_grad the Style U-Net and the texture network sum in place; the result must not change."""
    from napari_nanogan.config import GeneratorConfig
    from napari_nanogan.models.style_unet import StyleUNet

    torch.manual_seed(0)
    net = StyleUNet(GeneratorConfig(base_channels=8, depth=3)).eval()
    with torch.no_grad():
        for p in net.parameters():  # non-zero noise strengths and biases
            p.add_(0.05 * torch.randn_like(p))
    for n in (1, 2):
        mask = torch.rand(n, 2, 32, 48)
        z, noise = net.sample_latents(n, generator=torch.Generator().manual_seed(1)), net.sample_noise(n, (32, 48))
        with torch.enable_grad():
            slow = net(mask, z, noise).detach()
        with torch.no_grad():
            fast = net(mask, z, noise)
        assert torch.allclose(slow, fast, atol=1e-5)
    tex = TextureNet(SMALL).eval()
    with torch.enable_grad():
        slow = tex.sample(1, 40, 56, torch.Generator().manual_seed(3)).detach()
    with torch.no_grad():
        fast = tex.sample(1, 40, 56, torch.Generator().manual_seed(3))
    assert torch.allclose(slow, fast, atol=1e-5)


PARTICLES = TextureConfig(z_channels=4, widths=(8, 8, 8, 8), sigma=2.0, margin=0, region="particles", blend=0.0,
                          cond_channels=2)


def big_discs(shape=(96, 128), seed=0):
    """Bright discs of radius 14 with a speckled surface, on a plain substrate: particle detail to learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(((30, 30), (60, 90), (70, 30)), start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 14**2] = k
    image = 40 + (100 + 8 * rng.standard_normal(shape)) * (labels > 0)
    return np.clip(image, 0, 255).astype(np.float32), labels


def test_particle_texture_config_weight_and_condition_maps():
    from napari_nanogan.synthesis.texture import condition_maps, region_weight

    with pytest.raises(ValueError, match="region"):
        TextureConfig(region="rims")
    with pytest.raises(ValueError, match="cond_channels"):
        TextureConfig(cond_channels=1)
    assert TextureConfig.from_dict(PARTICLES.to_dict()) == PARTICLES
    # a configuration saved before particle textures reads as a substrate texture
    old = {k: v for k, v in SMALL.to_dict().items() if k not in ("region", "blend", "cond_channels")}
    assert TextureConfig.from_dict(old) == SMALL and SMALL.region == "substrate"
    _, labels = big_discs()
    w = region_weight(labels, PARTICLES)
    assert np.array_equal(w > 0, labels > 0)
    assert np.array_equal(region_weight(labels, SMALL), substrate_weight(labels, SMALL.margin))
    eroded = region_weight(labels, TextureConfig(region="particles", margin=2))
    assert eroded.sum() < w.sum() and not (eroded > w).any()
    cond = condition_maps(w)
    assert cond.shape == (2, *labels.shape) and np.array_equal(cond[0], w)
    assert cond[1][30, 30] == 1 and 0 < cond[1][30, 17] <= 0.5 and cond[1][0, 0] == 0  # depth: deep, rim, outside
    assert not condition_maps(np.zeros((8, 8))).any()


def test_conditional_texture_needs_and_follows_its_condition():
    from napari_nanogan.synthesis.texture import condition_maps

    torch.manual_seed(0)
    net = TextureNet(PARTICLES)
    _, labels = big_discs()
    cond = torch.from_numpy(condition_maps(labels > 0))[None]
    a = net.sample(1, 96, 128, torch.Generator().manual_seed(1), cond)
    assert a.shape == (1, 1, 96, 128)
    assert torch.equal(a, net.sample(1, 96, 128, torch.Generator().manual_seed(1), cond))
    other = torch.from_numpy(condition_maps(np.roll(labels, 20, axis=1) > 0))[None]
    assert not torch.equal(a, net.sample(1, 96, 128, torch.Generator().manual_seed(1), other))
    # inference (a split first convolution, channels-last on the CPU) equals the training path
    with torch.no_grad():
        fast = net.to(memory_format=torch.channels_last).sample(1, 96, 128, torch.Generator().manual_seed(1), cond)
    assert torch.allclose(fast, a, atol=1e-5)
    # sizes that are not multiples of 8 are padded and cut back
    assert net.sample(1, 50, 70, torch.Generator().manual_seed(1), cond[..., :50, :70]).shape == (1, 1, 50, 70)
    with pytest.raises(ValueError, match="condition channels"):
        net.sample(1, 96, 128, torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="condition channels"):
        TextureNet(SMALL).sample(1, 96, 128, torch.Generator().manual_seed(1), cond)


def test_particle_texture_changes_only_the_particles_and_keeps_their_level():
    from napari_nanogan.synthesis.texture import LearnedTexture

    torch.manual_seed(0)
    texture = LearnedTexture(TextureNet(PARTICLES))
    with torch.no_grad():
        texture.network.out.weight.mul_(50)
    image, labels = big_discs()
    flat = np.where(labels > 0, 150, 40).astype(np.uint8)
    out = texture.apply(flat, labels, 3)
    inside = labels > 0
    assert np.array_equal(out[~inside], flat[~inside])  # the substrate untouched
    assert out[inside].std() > 2  # detail on the particles
    assert abs(out[inside].astype(float).mean() - 150) < 3  # around their own level
    assert np.array_equal(out, texture.apply(flat, labels, 3)) and not np.array_equal(out, texture.apply(flat, labels, 4))
    # with a reference contrast, faint particles get proportionally less detail, none without contrast
    texture.contrast = 110.0  # flat: 150 - 40
    assert np.array_equal(texture.apply(flat, labels, 3), out)
    faint = np.where(labels > 0, 95, 40).astype(np.uint8)  # half the contrast
    assert texture.amplitude(faint, inside) == pytest.approx(0.5)
    spread = texture.apply(faint, labels, 3)[inside].astype(float).std()
    assert spread == pytest.approx(out[inside].astype(float).std() / 2, rel=0.15)
    none = np.where(labels > 0, 40, 40).astype(np.uint8)
    assert np.array_equal(texture.apply(none, labels, 3), none)
    # dark particles on a bright substrate (bright-field TEM): a negative reference, the same rule
    texture.contrast = -110.0
    assert texture.amplitude(np.where(labels > 0, 95, 150).astype(np.uint8), inside) == pytest.approx(0.5)
    assert texture.amplitude(np.where(labels > 0, 40, 150).astype(np.uint8), inside) == 1.0
    assert texture.amplitude(flat, inside) == 0.0  # bright particles against a dark reference: none


def test_particle_texture_trains_resumes_exactly_and_fits_its_gain(tmp_path):
    from napari_nanogan.synthesis.texture import LearnedTexture, region_weight

    pairs = [big_discs(seed=s) for s in range(2)]
    config = TextureTrainConfig(steps=3, batch_size=2, patch_size=32, checkpoint_every=1, min_fraction=0.25)
    images, labels = [p[0] for p in pairs], [p[1] for p in pairs]
    records = list(train_texture(images, labels, out_dir=tmp_path / "a", config=config, texture_config=PARTICLES))
    assert [r.step for r in records] == [1, 2, 3] and all(np.isfinite(r.losses["total"]) for r in records)
    stopped = {"n": 0}

    def stop():
        stopped["n"] += 1
        return stopped["n"] > 2

    list(train_texture(images, labels, out_dir=tmp_path / "b", config=config, texture_config=PARTICLES, should_stop=stop))
    list(train_texture(images, labels, out_dir=tmp_path / "b", config=config, texture_config=PARTICLES))
    a = load_checkpoint(tmp_path / "a" / "texture.pt", kind="particle-texture")
    b = load_checkpoint(tmp_path / "b" / "texture.pt", kind="particle-texture")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    texture = LearnedTexture.from_dict(a)
    w = region_weight(labels[0], PARTICLES)
    real = band_pass(torch.from_numpy(images[0])[None, None], torch.from_numpy(w)[None, None], 2.0)[0, 0].numpy()
    assert texture.residual(w, 0)[w > 0].std() == pytest.approx(real[w > 0].std(), rel=0.3)
    assert texture.contrast == pytest.approx(100, abs=3)  # the discs' median over the substrate
    texture.fit_gain([images[0]], [np.ones_like(labels[0])])  # all particle: no substrate to take a contrast from
    assert texture.contrast is None and texture.amplitude(images[0].astype(np.uint8), labels[0] > 0) == 1.0
    with pytest.raises(ValueError, match="no particles"):
        next(train_texture(images, [np.zeros_like(labels[0])] * 2, out_dir=tmp_path / "c", config=config,
                           texture_config=PARTICLES))


def test_cli_particle_texture_embeds_and_touches_only_the_particles(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.cli import main
    from napari_nanogan.synthesis import Generator, synthesize

    write_pairs(tmp_path, big_discs)
    run = tmp_path / "run"
    assert main(["train-texture", "--region", "particles", "--images", str(tmp_path / "im"), "--masks",
                 str(tmp_path / "m"), "--out", str(run), "--steps", "2", "--batch-size", "2", "--patch-size", "32"]) == 0
    trained = load_checkpoint(run / "texture.pt", kind="particle-texture")
    assert (trained["config"]["region"], trained["config"]["sigma"], trained["config"]["cond_channels"]) == ("particles", 2.0, 2)
    out = tmp_path / "g.pt"
    assert main(["tune-generator", "--model", str(tiny_generator_checkpoint), "--out", str(out), "--images",
                 str(tmp_path / "im"), "--particle-texture", str(run / "texture.pt")]) == 0
    textured = Generator.from_checkpoint(out, device="cpu")
    assert Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu").particle_texture is None
    assert textured.particle_texture.gain == trained["gain"]
    # a substrate texture is not a particle texture, and 'none' removes it
    sub = tmp_path / "sub"
    assert main(["train-texture", "--images", str(tmp_path / "im"), "--masks", str(tmp_path / "m"), "--out", str(sub),
                 "--steps", "1", "--batch-size", "2", "--patch-size", "32"]) == 0
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "x.pt"), "--images",
                 str(tmp_path / "im"), "--particle-texture", str(sub / "texture.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()
    assert main(["tune-generator", "--model", str(out), "--out", str(tmp_path / "none.pt"), "--images",
                 str(tmp_path / "im"), "--particle-texture", "none"]) == 0
    plain = Generator.from_checkpoint(tmp_path / "none.pt", device="cpu")  # the same post-processing, no texture
    assert plain.particle_texture is None
    _, labels = big_discs(seed=5)
    a, b = synthesize(labels, plain, seed=2), synthesize(labels, textured, seed=2)
    assert np.array_equal(a[labels == 0], b[labels == 0]) and not np.array_equal(a, b)
    # what the quality bench lays over the network's output is exactly what synthesize() returns
    from napari_nanogan.synthesis.finishing import finish

    raw = synthesize(labels, textured, seed=2, raw=True)
    assert np.array_equal(finish(raw, labels > 0, textured, 2), b)


def test_an_adapted_generator_gets_its_finishing_and_textures_back(tiny_generator_checkpoint):
    """The cycle GAN saves the network alone; fine-tuning refits the finishing and the base's textures on the rows."""
    from napari_nanogan.synthesis import Generator, synthesize
    from napari_nanogan.synthesis.finishing import noise_level
    from napari_nanogan.training.amend import finish_adapted_generator

    torch.manual_seed(1)
    texture = LearnedTexture(TextureNet(SMALL), gain=7.0)
    raw = load_checkpoint(tiny_generator_checkpoint, kind="generator")
    base = {**raw, "postprocess": {"blur_sigma": 0.5, "noise_residual": 9.0, "gain": 3.0, "offset": -40.0,
                                   "particle_spread": 0.25},
            "substrate_texture": texture.to_dict()}
    images, labels = zip(*(discs(seed=s) for s in range(2)))
    images = [np.asarray(im, np.float32) for im in images]
    part = finish_adapted_generator(raw, base, images, list(labels))
    assert "postprocess" not in raw and "substrate_texture" not in raw  # the GAN's checkpoint is not changed
    finishing = part["postprocess"]
    assert finishing["blur_sigma"] == 0.5 and finishing["particle_spread"] == 0.25  # the base's, not refitted
    assert finishing["noise_residual"] == pytest.approx(np.median([noise_level(im) for im in images]))
    assert (finishing["gain"], finishing["offset"]) != (3.0, -40.0)
    assert part["substrate_texture"]["gain"] != 7.0 and part["provenance"]["texture_gains"]
    # the refitted calibration gives synthetic images of the rows the real rows' mean grey level
    from napari_nanogan.config import Finishing

    network = Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu").network
    finished = Generator.from_network(network, device="cpu", finishing=Finishing.from_dict(finishing))
    synthetic = [synthesize(lab, finished, seed=10**5 + i).astype(np.float64) for i, lab in enumerate(labels)]
    assert abs(np.mean(synthetic) - np.mean(images)) < 0.15 * np.std(images)
    with pytest.raises(ValueError, match="as many masks"):
        finish_adapted_generator(raw, base, images, [])
