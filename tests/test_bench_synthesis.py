"""The post-processings bench.synthesis_quality measures FID/KID for, and the other synthesis benches."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench():
    from bench import synthesis_quality

    return synthesis_quality


@pytest.fixture(scope="module")
def texture():
    """bench.texture: the texture diagnostics and noise models measured and not kept."""
    from bench import texture

    return texture


@pytest.fixture
def smooth_image():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    return np.clip(100 + 40 * ndi.gaussian_filter(rng.normal(size=(256, 256)), 6) * 6, 0, 255)


def test_blur_sharpen_and_noise_move_the_noise_level_as_meant(bench, smooth_image):
    from napari_nanogan.synthesis.finishing import add_sem_noise, noise_level

    noisy = add_sem_noise(smooth_image.astype(np.uint8), 5.0, seed=3).astype(np.float32)
    train_values = np.linspace(0, 255, 1000)
    blur, sharp, hist, chained = (bench.post_process(p, [noisy], train_values, 8.0, [0])[0]
                                  for p in ("blur", "sharpen", "hist", "blur+noise"))
    level = noise_level(noisy)
    assert noise_level(blur) < 0.7 * level < level < noise_level(sharp)
    assert noise_level(chained) == pytest.approx(8.0, rel=0.1)  # blurred, then noise up to the target
    # histogram matching to a uniform 0-255 reference spreads the grey levels over it
    assert np.percentile(hist, 10) == pytest.approx(25.5, abs=3) and np.percentile(hist, 90) == pytest.approx(229.5, abs=3)
    stronger = bench.post_process("blur:1.5", [noisy], train_values, 5.0, [0])[0]
    assert noise_level(stronger) < noise_level(blur)
    with pytest.raises(SystemExit, match="unknown"):
        bench.post_process("blur+magic", [noisy], train_values, 5.0, [0])


def test_synthesis_figure_from_procedural_masks(tmp_path, tiny_generator_checkpoint):
    from PIL import Image

    from bench import synthesis_figure

    out = tmp_path / "fig.png"
    synthesis_figure.main(["--procedural", "--out", str(out), "--model", str(tiny_generator_checkpoint), "--rows", "2",
                 "--styles", "2"])
    width, height = Image.open(out).size
    assert width > height > 100  # 2 rows of (mask + 2 styles)


def test_radial_psd_and_shaped_noise_agree(texture):
    radial_psd, shaped_noise = texture.radial_psd, texture.shaped_noise

    white = radial_psd([np.random.default_rng(0).normal(0, 3, (300, 400))])
    assert np.median(white[5:60]) == pytest.approx(9.0, rel=0.1)  # white noise: its variance at every frequency
    # a spectrum falling with frequency, as a textured substrate has: the noise follows it at any size
    target = 50.0 / (1 + (np.arange(92) / 8.0) ** 2)
    noise = shaped_noise((257, 390), target, seed=1)
    measured = radial_psd([noise])
    for k in (4, 8, 16, 32, 60):
        assert measured[k] == pytest.approx(target[k], rel=0.25), k
    np.testing.assert_array_equal(noise, shaped_noise((257, 390), target, seed=1))
    assert not np.array_equal(noise, shaped_noise((257, 390), target, seed=2))
    with pytest.raises(ValueError, match="at least"):
        radial_psd([np.zeros((20, 20))])


def test_calibration_recovers_gain_offset_and_the_missing_texture(texture):
    from scipy import ndimage as ndi

    from napari_nanogan.synthesis.finishing import calibration

    missing_spectrum, radial_psd = texture.missing_spectrum, texture.radial_psd

    rng = np.random.default_rng(3)
    scenes = [100 + 200 * ndi.gaussian_filter(rng.normal(size=(256, 256)), 8) for _ in range(4)]
    texture = [ndi.gaussian_filter(rng.normal(0, 6, (256, 256)), 1.0) for _ in scenes]
    real = [np.clip(s + t, 0, 255) for s, t in zip(scenes, texture)]
    synthetic = [(s - 20) / 1.5 for s in scenes]  # darker, flatter, and without the texture
    gain, offset = calibration(real, synthetic)
    assert gain == pytest.approx(1.5, rel=0.05) and offset == pytest.approx(20, abs=8)
    missing = missing_spectrum(real, [np.clip(gain * s + offset, 0, 255) for s in synthetic])
    expected = radial_psd(texture)
    for k in (8, 16, 24):
        assert missing[k] == pytest.approx(expected[k], rel=0.3), k
    assert missing.min() >= 0


def test_signal_dependent_noise_follows_brightness(texture):
    """Noise fitted per brightness: the substrate gets little, the particles more, as SEM shot noise does."""
    add_signal_noise, noise_profile, signal_noise_table = texture.add_signal_noise, texture.noise_profile, texture.signal_noise_table

    rng = np.random.default_rng(0)
    clean = np.full((256, 512), 10, np.uint8)
    clean[:, 256:] = 150  # dark substrate | bright particle
    real = [np.clip(clean + np.where(clean > 50, 6.0, 1.5) * rng.normal(size=clean.shape), 0, 255) for _ in range(3)]
    table = signal_noise_table(real, [clean] * 3)
    levels = dict(table)
    assert levels[10.0] == pytest.approx(1.5 * 0.876, rel=0.15) and levels[155.0] == pytest.approx(6 * 0.876, rel=0.1)
    noisy = add_signal_noise(clean, table, 0.0, seed=1)
    profile = noise_profile([noisy])
    assert profile[0] == pytest.approx(levels[10.0], rel=0.25) and profile[5] == pytest.approx(levels[155.0], rel=0.1)
    assert np.isnan(profile[2])  # no pixels at that brightness
    np.testing.assert_array_equal(noisy, add_signal_noise(clean, table, 0.0, seed=1))
    assert not np.array_equal(noisy, add_signal_noise(clean, table, 0.0, seed=2))

    def lag1(im):  # correlation of neighbouring residual pixels
        from scipy import ndimage as ndi

        r = im.astype(np.float32) - ndi.gaussian_filter(im.astype(np.float32), 1.0)
        r = (r - r.mean()) / r.std()
        return float((r[:, 1:] * r[:, :-1]).mean())

    assert lag1(noisy[:, 256:]) < 0 < lag1(add_signal_noise(clean, table, 0.7, seed=1)[:, 256:])
    with pytest.raises(ValueError, match="brightness"):
        signal_noise_table([np.zeros((10, 10))], [np.zeros((10, 10))])


def test_bench_fitted_steps_use_the_training_pairs_only(bench, texture, smooth_image):
    """calib, spectral and snoise are fitted on (real, synthetic) training pairs and applied to other images."""
    from napari_nanogan.synthesis.finishing import noise_level

    rng = np.random.default_rng(5)
    real = [np.clip(smooth_image + rng.normal(0, 4, smooth_image.shape), 0, 255) for _ in range(2)]
    synth = [smooth_image * 0.5 for _ in range(2)]  # darker, flatter, noiseless
    held = [smooth_image * 0.5]
    for post in ("calib", "calib+spectral", "calib+snoise", "calib+snoise:0.7"):
        out = bench.post_process(post, held, np.concatenate([r.ravel() for r in real]), 3.0, [1], (real, synth))
        assert out[0].mean() == pytest.approx(np.mean(real), rel=0.05), post
        if post != "calib":
            assert noise_level(out[0]) > noise_level(held[0]) + 1, post
    with pytest.raises(SystemExit, match="training pairs"):
        bench.post_process("snoise", held, np.zeros(3), 3.0, [1])


def test_the_naive_baseline_renders_the_polarity_of_its_data_set(bench):
    labels = np.zeros((64, 64), np.int32)
    labels[20:40, 20:40] = 1
    for dark in (False, True):
        image = bench.naive_render(labels, seed=0, dark_particles=dark)
        inside, outside = image[labels > 0].mean(), image[labels == 0].mean()
        assert (inside < outside - 80) if dark else (inside > outside + 80)


def test_tone_steps_move_background_and_particles_to_the_asked_levels(bench):
    """The mask-aware tone mapping sets the median background and particle grey levels."""
    labels = np.zeros((64, 64), np.int32)
    labels[10:30, 10:30] = 1
    labels[40:60, 35:60] = 2
    rng = np.random.default_rng(0)
    image = np.where(labels > 0, 180.0, 90.0) + rng.normal(0, 3, labels.shape)
    tone = {"labels": [labels], "train": [(30.0, 120.0), (40.0, 130.0)], "own": [(25.0, 140.0)]}
    for post, (bg, fg) in (("tone", (35.0, 125.0)), ("tone:own", (25.0, 140.0))):
        out = bench.post_process(post, [image], np.zeros(3), 3.0, [1], tone=tone)[0]
        assert np.median(out[labels == 0]) == pytest.approx(bg, abs=0.5), post
        assert np.median(out[labels > 0]) == pytest.approx(fg, abs=0.5), post
    sampled = bench.post_process("tone:sampled", [image], np.zeros(3), 3.0, [1], tone=tone)[0]
    assert (np.median(sampled[labels == 0]), np.median(sampled[labels > 0])) in [
        pytest.approx(lv, abs=0.5) for lv in tone["train"]]
    with pytest.raises(SystemExit, match="needs the masks"):
        bench.post_process("tone", [image], np.zeros(3), 3.0, [1])


def test_texture_refiner_starts_as_the_identity_and_learns_a_residual():
    """bench.texture_refiner (measured, not kept): zero residual at first, seeded noise, a trainable residual."""
    import torch

    from bench import texture_refiner as tr

    torch.manual_seed(0)
    refiner = tr.Refiner(channels=8)
    image = np.random.default_rng(1).uniform(0, 255, (40, 48)).astype(np.float32)
    assert np.allclose(tr.refine(refiner, image, seed=3), np.clip(image, 0, 255), atol=1e-3)
    x = torch.rand(1, 1, 40, 48)
    blurred = tr.gaussian_blur(x, 1.5)
    assert blurred.shape == x.shape and abs(blurred.mean().item() - x.mean().item()) < 0.01
    assert blurred.std() < x.std()
    opt = torch.optim.Adam(refiner.parameters(), 1e-2)
    for _ in range(3):  # the residual path takes gradients from the first step (zero-initialised output conv)
        loss = (refiner(x, torch.randn_like(x)) - x - 0.1).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not np.allclose(tr.refine(refiner, image, seed=3), tr.refine(refiner, image, seed=4))


def test_synthesis_parts_composites_through_the_mask():
    from bench import synthesis_parts

    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 3
    real, synthetic = np.full((8, 8), 10.0), np.full((8, 8), 200.0)
    substrate = synthesis_parts.composite(real, synthetic, labels, "substrate")
    particles = synthesis_parts.composite(real, synthetic, labels, "particles")
    assert (substrate[labels == 0] == 10).all() and (substrate[labels > 0] == 200).all()
    assert (particles[labels == 0] == 200).all() and (particles[labels > 0] == 10).all()
    with pytest.raises(ValueError, match="keep must be"):
        synthesis_parts.composite(real, synthetic, labels, "edges")


def test_synthesis_parts_band_swap_takes_one_band_from_the_real_particles():
    from bench import synthesis_parts

    labels = np.zeros((40, 40), np.int32)
    labels[10:30, 10:30] = 1
    inside = labels > 0
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    shading = 100 + 2.0 * xx  # a slow ramp: coarse
    real = np.where(inside, shading + rng.normal(0, 10, (40, 40)), 5.0)  # + speckle: fine
    synthetic = np.where(inside, 150.0, 50.0)  # flat particles on another substrate
    detail = synthesis_parts.swap_band(real, synthetic, labels, "fine", sigma=2.0)
    shade = synthesis_parts.swap_band(real, synthetic, labels, "coarse", sigma=2.0)
    assert (detail[~inside] == 50).all() and (shade[~inside] == 50).all()  # the substrate stays synthetic
    # the real speckle comes with the fine band, on the synthetic level; the real ramp with the coarse band
    assert 5 < detail[inside].std() < 12 and abs(detail[inside].mean() - 150) < 2
    assert shade[inside].std() < 20 and np.corrcoef(shade[inside], shading[inside])[0, 1] > 0.95
    coarse, fine = synthesis_parts.split_bands(real, inside, 2.0)
    assert np.allclose(coarse + fine, np.where(inside, real, 0))  # the bands add back up
    with pytest.raises(ValueError, match="band must be"):
        synthesis_parts.swap_band(real, synthetic, labels, "middle")
    # by zone: the rim (2 px inside the outline) and the interior split the particle between them
    rim = synthesis_parts.swap_band(real, synthetic, labels, "fine", 2.0, "rim", 2)
    deep = synthesis_parts.swap_band(real, synthetic, labels, "fine", 2.0, "interior", 2)
    changed_rim, changed_deep = rim != synthetic, deep != synthetic
    assert changed_rim[10:12, 10:30].all() and not changed_rim[13:27, 13:27].any()
    assert changed_deep[13:27, 13:27].all() and not changed_deep[10:12, 10:30].any()
    assert np.allclose(np.where(changed_rim, rim, deep), detail)
    with pytest.raises(ValueError, match="zone must be"):
        synthesis_parts.swap_band(real, synthetic, labels, "fine", zone="edge")


def test_critic_probe_auc_variants_and_an_easy_case():
    """bench.critic_probe: AUC is P(real scores above fake), the variants differ as named, and a critic
    trained on a plain difference (textured vs flat substrate) finds it on held-out patches."""
    import torch

    from bench import critic_probe as cp

    assert cp.roc_auc([2, 3], [0, 1]) == 1.0 and cp.roc_auc([0], [1]) == 0.0 and cp.roc_auc([1, 1], [1, 1]) == 0.5
    assert not any(hasattr(m, "weight_orig") for m in cp.make_critic("no_spectral_norm").modules())
    assert any(hasattr(m, "weight_orig") for m in cp.make_critic("shipped").modules())
    assert cp.make_critic("wide").net[0].out_channels == 64 and cp.make_critic("shipped").net[0].out_channels == 32
    g = torch.Generator().manual_seed(0)

    def pool(n):
        masks = torch.zeros(n, 2, 32, 32)
        masks[:, :, 12:20, 12:20] = 1
        real = (-0.6 + 0.3 * torch.randn(n, 1, 32, 32, generator=g)).clamp(-1, 1)
        return {"real": real, "real_masks": masks, "fake": torch.full((n, 1, 32, 32), -0.6), "fake_masks": masks}

    result = cp.probe("no_diffaugment", pool(64), pool(32), steps=60, batch=8, seed=0, lr=1e-3)
    assert result["held_out_auc"] > 0.9 and result["train_loss_last_50"] < result["train_loss_first_50"]


def test_substrate_transplant_keeps_particles_and_the_substrate_level():
    """bench.substrate_texture --transplant (a diagnostic): another image's residual over the substrate only."""
    from bench import substrate_texture as st

    rng = np.random.default_rng(0)
    labels = np.zeros((64, 80), np.int32)
    labels[20:35, 30:45] = 1
    donor = 50 + 5 * rng.standard_normal((64, 80))
    w = st.substrate_weight(labels, 3)
    residual = st.real_residual(donor, w, 4.0)
    assert abs(residual[w > 0].mean()) < 0.5 and residual[w == 0].max() == 0
    image = np.where(labels > 0, 200.0, 30.0).astype(np.float32)
    out = st.transplanted(image, labels, [(residual, w)], 4.0, seed=1)
    near = st.substrate_weight(labels, 3) == 0
    np.testing.assert_array_equal(out[near], image[near])
    far = st.substrate_weight(labels, 8) > 0
    assert out[far].std() > 2 and abs(out[far].mean() - 30) < 1


def test_synthesis_speed_bench_reports_every_stage(capsys):
    """bench.synthesis_speed: JSON with the whole call and each stage (no timing is asserted)."""
    import json

    from bench import synthesis_speed

    synthesis_speed.main(["--repeats", "1", "--large", "256"])
    result = json.loads(capsys.readouterr().out)
    assert result["large"]["side"] == 256 and result["large"]["seconds"] > 0 and result["large"]["peak_rss_mb"] > 0
    assert result["has_texture"] and result["has_particle_texture"] and result["particles"] >= 100
    assert set(result["stages"]) == {"maps", "network", "postprocess", "texture", "texture_network", "particle_texture"}
    assert all(v > 0 for v in result["stages"].values()) and result["seconds_1024x768"] > 0
    assert result["synthesis_vs_matmul"] == round(result["seconds_1024x768"] / result["matmul_74gflop_seconds"], 2)
