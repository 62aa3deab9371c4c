import numpy as np
import pytest
import tifffile
import torch
from conftest import DATA, requires_shared

from napari_nanogan.config import GeneratorConfig, SegmenterConfig
from napari_nanogan.data.datasets import Sample
from napari_nanogan.data.procedural import particle_labels, render_sem
from napari_nanogan.models.checkpoint import load_checkpoint
from napari_nanogan.models.discriminator import PatchCritic, diff_augment
from napari_nanogan.models.style_unet import StyleEncoder, StyleUNet, resize_noise
from napari_nanogan.synthesis import Generator, mask_maps, synthesize
from napari_nanogan.config import GanTrainConfig
from napari_nanogan.training.cyclegan import train_cyclegan

SMALL_G = GeneratorConfig(base_channels=8, depth=3, style_dim=16, mapping_layers=2)
SMALL_S = SegmenterConfig(base_channels=4, depth=3)


@pytest.fixture(scope="module")
def tiny_generator(tiny_generator_checkpoint):
    return Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu")


def test_generator_and_critic_shapes():
    g = StyleUNet(SMALL_G)
    mask = torch.zeros(3, 2, 64, 48)
    out = g(mask, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 64, 48) and out.abs().max() <= 1
    assert g.n_noise == 1 + 2 * (SMALL_G.depth - 1)
    assert PatchCritic(1)(out).shape == (3, 1, 8, 6)
    assert PatchCritic(2)(mask).shape == (3, 1, 8, 6)
    assert StyleEncoder(16)(out).shape == (3, 16)
    assert diff_augment(out, generator=torch.Generator().manual_seed(1)).shape == out.shape
    with pytest.raises(ValueError, match="multiples"):
        g(torch.zeros(1, 2, 30, 32))
    with pytest.raises(ValueError, match="noise maps"):
        g(mask, noise=[torch.zeros(3, 1, 64, 48)])


def test_resize_noise_keeps_unit_variance():
    n = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    small = resize_noise(n, (32, 32))
    assert small.shape == (1, 1, 32, 32) and 0.8 < float(small.std()) < 1.2


def _small_generator_and_inputs(n_styles: int = 1):
    """A small untrained generator, a square mask, ``n_styles`` latents and one set of noise maps (all seeded)."""
    torch.manual_seed(0)
    g = StyleUNet(SMALL_G).eval()
    mask = torch.zeros(1, 2, 64, 64)
    mask[:, :, 16:40, 16:40] = 1
    z = g.sample_latents(n_styles, generator=torch.Generator().manual_seed(1))
    noise = g.sample_noise(1, (64, 64), generator=torch.Generator().manual_seed(2))
    return g, mask, z, noise


def test_style_and_noise_both_change_the_image():
    """The reference code's bug: a 'style' generator that ignores style and noise. Not ours."""
    g, mask, z, noise = _small_generator_and_inputs(2)
    other_noise = g.sample_noise(1, (64, 64), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = g(mask, z[:1], noise)
        b = g(mask, z[1:], noise)  # other style, same noise
        c = g(mask, z[:1], other_noise)  # same style, other noise
    assert (a - b).abs().mean() > 1e-3
    assert (a - c).abs().mean() > 1e-3


def test_synthesize_seed_reproducible_and_varied(tiny_generator):
    mask = particle_labels((70, 90), n_particles=10, mean_diameter=12, seed=1)
    a = synthesize(mask, tiny_generator, seed=5)
    b = synthesize(mask, tiny_generator, seed=5)
    assert a.shape == mask.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    stack = np.stack([synthesize(mask, tiny_generator, seed=s).astype(float) for s in range(6)])
    assert stack.var(axis=0).mean() > 1.0  # pixel variance across seeds, well above zero


@pytest.mark.parametrize("mask", [np.zeros((40, 40), np.uint8), np.ones((40, 40), np.uint8),
                                  np.arange(1600).reshape(40, 40) % 7, np.zeros((40, 40), bool)])
def test_synthesize_accepts_edge_case_masks(tiny_generator, mask):
    assert synthesize(mask, tiny_generator, seed=0).shape == (40, 40)


@pytest.mark.parametrize("mask,match", [
    (np.zeros((3, 40, 40)), "2D"),
    (np.zeros((4, 4)), "within"),
    (np.full((40, 40), 0.5), "whole numbers"),
    (np.full((40, 40), -1), ">= 0"),
    (np.array([["a"] * 10] * 10), "unsupported"),
])
def test_bad_masks(mask, match):
    with pytest.raises(ValueError, match=match):
        mask_maps(mask)


def _paired(n=2, diameter=12):
    out = []
    for s in range(n):
        lab = particle_labels((96, 96), n_particles=10, mean_diameter=diameter, seed=s)
        im = render_sem(lab, seed=s)
        out.append(Sample(f"s{s}", im, lab, float(np.percentile(im, 1)), float(np.percentile(im, 99.8)), "sem"))
    return out


def test_inverting_the_output_gives_the_negative_image(tmp_path):
    g, mask, z, noise = _small_generator_and_inputs()
    with torch.no_grad():
        before = g(mask, z, noise)
        after = g.invert_output_()(mask, z, noise)
    assert before.abs().mean() > 0.05
    assert torch.allclose(after, -before, atol=1e-6)
    # the cycle GAN starts from an inverted checkpoint only when given one
    path = tmp_path / "g.pt"
    from napari_nanogan.models.checkpoint import save_checkpoint

    save_checkpoint(path, {"kind": "generator", "config": SMALL_G.to_dict(), "state_dict": StyleUNet(SMALL_G).state_dict()})
    cfg = GanTrainConfig(steps=1, batch_size=2, patch_size=32, checkpoint_every=1)
    list(train_cyclegan(_paired(), out_dir=tmp_path / "run", config=cfg, generator_config=SMALL_G,
                        segmenter_config=SMALL_S, init_generator=path, invert_init_generator=True))
    with pytest.raises(ValueError, match="needs an init_generator"):
        list(train_cyclegan(_paired(), out_dir=tmp_path / "run2", config=cfg, generator_config=SMALL_G,
                            segmenter_config=SMALL_S, invert_init_generator=True))


def _gan(out_dir, steps, stop_after=None, val=None, device="cpu", **config):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] > stop_after

    cfg = GanTrainConfig(**dict(dict(steps=steps, batch_size=2, patch_size=32, checkpoint_every=1), **config))
    return list(train_cyclegan(_paired(), out_dir=out_dir, config=cfg, generator_config=SMALL_G, segmenter_config=SMALL_S,
                               val=val, should_stop=stop, device=device))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gan_resume_on_gpu(tmp_path):
    _gan(tmp_path, 2, stop_after=1, device="cuda")
    assert [r.step for r in _gan(tmp_path, 2, device="cuda")] == [2]


def test_gan_smoke_finite_losses_and_exact_resume(tmp_path):
    full = _gan(tmp_path / "full", 2)
    assert [r.step for r in full] == [1, 2]
    for r in full:
        assert all(np.isfinite(v) for v in r.losses.values()), r.losses
    assert load_checkpoint(tmp_path / "full" / "generator.pt", kind="generator")
    assert load_checkpoint(tmp_path / "full" / "segmenter.pt", kind="segmenter")
    part = _gan(tmp_path / "resumed", 2, stop_after=1)
    assert part[-1].stopped and part[-1].step == 1
    rest = _gan(tmp_path / "resumed", 2)
    assert [r.step for r in rest] == [2]
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    for key in ("state_dict", "ema"):
        for k in a[key]:
            assert torch.allclose(a[key][k].float(), b[key][k].float(), atol=1e-6), (key, k)


def test_gan_validates_the_segmenter_and_keeps_its_best(tmp_path):
    val = _paired()[:1]
    records = _gan(tmp_path, 4, val=val, val_every=2, contact_weight=5.0)
    assert [r.validation is not None for r in records] == [False, True, False, True]
    scores = [r.validation["score"] for r in records if r.validation]
    best = load_checkpoint(tmp_path / "segmenter_best.pt", kind="segmenter")
    assert best["provenance"]["validation"]["score"] == max(scores)
    assert best["provenance"]["train_config"]["contact_weight"] == 5.0
    state = load_checkpoint(tmp_path / "last.pt")["training"]
    assert [h["step"] for h in state["history"]] == [2, 4] and state["best_score"] == max(scores)
    # the segmenter loads as a product model
    from napari_nanogan.segmentation import load_segmenter

    assert load_segmenter(tmp_path / "segmenter_best.pt").config == SMALL_S


def test_gan_segmenter_batch_is_augmented_unlike_the_critics(tmp_path, monkeypatch):
    """The segmenter's supervised batch uses the segmenter's augmentation; critics see real images as they are."""
    import napari_nanogan.training.cyclegan as cg

    seen = []
    real = cg.sample_batch
    monkeypatch.setattr(cg, "sample_batch",
                        lambda *a, **k: seen.append((a[4], k.get("with_contact", False), a[2])) or real(*a, **k))
    _gan(tmp_path / "a", 1, contact_weight=2.0, segmenter_patch_size=48)
    assert [c for c, _, _ in seen[:3]] == [cg.GEOMETRY_ONLY] * 3 and [n for _, _, n in seen[:3]] == [32] * 3
    assert seen[3][0] != cg.GEOMETRY_ONLY and seen[3][1] is True and seen[3][2] == 48
    seen.clear()
    _gan(tmp_path / "b", 1, segmenter_augment=False)
    assert len(seen) == 3


def test_gan_gradients_reach_both_networks(tmp_path):
    """The cycle losses go through soft masks: the segmenter and the generator both learn."""
    from napari_nanogan.training.cyclegan import CycleGAN

    torch.manual_seed(0)
    before = CycleGAN(SMALL_G, SMALL_S).state_dict()
    _gan(tmp_path, 1)
    after = load_checkpoint(tmp_path / "last.pt")["state_dict"]
    for prefix in ("mask_to_image.", "image_to_mask.", "style_encoder.", "image_critic.", "mask_critic."):
        changed = [k for k in after if k.startswith(prefix) and after[k].dtype.is_floating_point
                   and not torch.equal(after[k], before[k])]
        assert changed, prefix


def test_high_pass_keeps_fine_texture_and_drops_shading():
    from napari_nanogan.training.cyclegan import high_pass

    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    shading = (0.8 * xx + 0.3 * yy)[None, None]
    noise = 0.02 * torch.randn(1, 1, 64, 64, generator=g)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert high_pass(shading)[inner].abs().max() < 1e-4  # a linear ramp has no texture
    residual = high_pass(shading + noise, gain=1.0)[inner]
    assert 0.6 < float(residual.std() / noise[inner].std()) < 1.0  # most of white noise is fine texture
    assert torch.allclose(high_pass(noise), 8.0 * high_pass(noise, gain=1.0))


def _optional_critic_learns_and_old_runs_resume_with_it(tmp_path, weights, loss: str, prefix: str, opt_key: str):
    """An optional critic learns when its weight is on, is off by default, and a run saved before it existed
    resumes with it added; returns that old run's state (for further checks)."""
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.training.cyclegan import CycleGAN

    torch.manual_seed(0)
    before = CycleGAN(SMALL_G, SMALL_S).state_dict()
    records = _gan(tmp_path / "on", 1, weights=weights)
    assert np.isfinite(records[0].losses[f"adv_{loss}"]) and np.isfinite(records[0].losses[f"critic_{loss}"])
    after = load_checkpoint(tmp_path / "on" / "last.pt")["state_dict"]
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(prefix))
    assert f"adv_{loss}" not in _gan(tmp_path / "plain", 1)[0].losses  # off by default
    _gan(tmp_path / "old", 2, stop_after=1)
    state = load_checkpoint(tmp_path / "old" / "last.pt")
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if not k.startswith(prefix)}
    del state["training"]["optimizers"][opt_key]
    save_checkpoint(tmp_path / "old" / "last.pt", state)
    assert [r.step for r in _gan(tmp_path / "old", 2, weights=weights)] == [2]
    return state


def test_texture_critic_trains_and_old_runs_resume_without_it(tmp_path):
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.config import GanLossWeights

    state = _optional_critic_learns_and_old_runs_resume_with_it(tmp_path, GanLossWeights(adv_texture=1.0), "texture",
                                                                "texture_critic.", "critic_texture")
    # anything else missing is still an error
    del state["state_dict"]["mask_critic.net.0.bias"]
    save_checkpoint(tmp_path / "old" / "last.pt", state)
    with pytest.raises(RuntimeError, match="missing"):
        _gan(tmp_path / "old", 3)


def test_substrate_only_blacks_out_the_dilated_particles():
    from napari_nanogan.training.cyclegan import substrate_only

    x = torch.linspace(-0.5, 0.5, 40 * 40).view(1, 1, 40, 40)
    fg = torch.zeros(1, 1, 40, 40)
    fg[..., 15:20, 15:20] = 1
    out = substrate_only(x, fg, margin=3)
    covered = torch.zeros(1, 1, 40, 40, dtype=torch.bool)
    covered[..., 12:23, 12:23] = True  # the particle and 3 px around it
    assert torch.all(out[covered] == -1) and torch.equal(out[~covered], x[~covered])
    # no particles: the image as it is, and gradients reach the substrate pixels only
    assert torch.equal(substrate_only(x, torch.zeros_like(fg)), x)
    xg = x.clone().requires_grad_(True)
    substrate_only(xg, fg, margin=3).sum().backward()
    assert torch.all(xg.grad[covered] == 0) and torch.all(xg.grad[~covered] == 1)


def test_substrate_critic_and_critic_width(tmp_path):
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.training.cyclegan import CycleGAN
    from napari_nanogan.config import GanLossWeights

    torch.manual_seed(0)
    before = CycleGAN(SMALL_G, SMALL_S, critic_channels=16).state_dict()
    records = _gan(tmp_path / "sub", 1, weights=GanLossWeights(adv_substrate=1.0), critic_channels=16)
    assert np.isfinite(records[0].losses["adv_substrate"]) and np.isfinite(records[0].losses["critic_substrate"])
    after = load_checkpoint(tmp_path / "sub" / "last.pt")["state_dict"]
    assert after["image_critic.net.0.bias"].shape == (16,) and after["substrate_critic.net.0.bias"].shape == (16,)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("substrate_critic."))
    plain = _gan(tmp_path / "plain", 1)
    assert "adv_substrate" not in plain[0].losses  # off by default, and the default width is 32
    assert load_checkpoint(tmp_path / "plain" / "last.pt")["state_dict"]["image_critic.net.0.bias"].shape == (32,)
    # a run saved before the substrate critic existed resumes with it added
    _gan(tmp_path / "old", 2, stop_after=1)
    state = load_checkpoint(tmp_path / "old" / "last.pt")
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if not k.startswith("substrate_critic.")}
    del state["training"]["optimizers"]["critic_substrate"]
    save_checkpoint(tmp_path / "old" / "last.pt", state)
    assert [r.step for r in _gan(tmp_path / "old", 2, weights=GanLossWeights(adv_substrate=1.0))] == [2]


def test_particles_into_replaces_only_the_dilated_particles():
    from napari_nanogan.training.cyclegan import particles_into

    x = torch.linspace(-0.5, 0.5, 40 * 40).view(1, 1, 40, 40)
    drawn = torch.full_like(x, 0.9)
    fg = torch.zeros(1, 1, 40, 40)
    fg[..., 15:20, 15:20] = 1
    covered = torch.zeros(1, 1, 40, 40, dtype=torch.bool)
    covered[..., 14:21, 14:21] = True  # the particle and 1 px around it
    out = particles_into(x, drawn, fg, margin=1)
    assert torch.all(out[covered] == 0.9) and torch.equal(out[~covered], x[~covered])
    # gradients reach the drawn particles only: the critic's signal to the generator is the particles
    dg = drawn.clone().requires_grad_(True)
    particles_into(x, dg, fg, margin=1).sum().backward()
    assert torch.all(dg.grad[covered] == 1) and torch.all(dg.grad[~covered] == 0)
    assert torch.equal(particles_into(x, drawn, torch.zeros_like(fg)), x)  # no particles: the real image


def test_particle_critic_learns_and_old_runs_resume_with_it(tmp_path):
    from napari_nanogan.config import GanLossWeights

    _optional_critic_learns_and_old_runs_resume_with_it(tmp_path, GanLossWeights(adv_particles=1.0), "particles",
                                                        "particle_critic.", "critic_particle")


def test_critic_warmup_trains_only_the_critics(tmp_path):
    from napari_nanogan.training.cyclegan import CycleGAN
    from napari_nanogan.config import GanLossWeights

    torch.manual_seed(0)
    before = CycleGAN(SMALL_G, SMALL_S).state_dict()
    records = _gan(tmp_path / "warm", 2, critic_warmup=2, weights=GanLossWeights(adv_substrate=1.0))
    assert all(set(r.losses) == {"critic_image", "critic_mask", "critic_substrate"} for r in records)
    state = load_checkpoint(tmp_path / "warm" / "last.pt")
    after = state["state_dict"]
    for prefix in ("mask_to_image.", "image_to_mask.", "style_encoder."):  # running statistics included
        assert all(torch.equal(after[k], before[k]) for k in after if k.startswith(prefix)), prefix
    for prefix in ("image_critic.", "mask_critic.", "substrate_critic."):
        assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith(prefix)), prefix
    assert all(torch.equal(state["ema"][k], before["mask_to_image." + k]) for k in state["ema"])
    assert torch.is_grad_enabled()
    # then the whole cycle GAN learns, resuming across the end of the warm-up
    records = _gan(tmp_path / "warm", 3, critic_warmup=2, weights=GanLossWeights(adv_substrate=1.0))
    assert [r.step for r in records] == [3] and "total" in records[0].losses
    after = load_checkpoint(tmp_path / "warm" / "last.pt")["state_dict"]
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("mask_to_image."))


def test_gan_masks_use_the_shipped_seed_depth_whatever_a_segmenter_run_left(tmp_path):
    from napari_nanogan.data.targets import interior_from_labels

    paired = _paired(diameter=36)  # deep enough for the depth cap to matter
    for sample in paired:
        sample.use_seed_depth(None)  # as `nanogan train --seed-depth 0` leaves them
        assert (sample.targets[1] > 0).sum() < interior_from_labels(sample.labels).sum()
    cfg = GanTrainConfig(steps=1, batch_size=2, patch_size=32, checkpoint_every=1)
    list(train_cyclegan(paired, out_dir=tmp_path, config=cfg, generator_config=SMALL_G, segmenter_config=SMALL_S,
                        device="cpu"))
    for sample in paired:
        np.testing.assert_array_equal(sample.targets[1] > 0, interior_from_labels(sample.labels))


def test_synthesize_cli_contract(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.cli import main

    mask = particle_labels((75, 101), n_particles=12, mean_diameter=12, seed=2)
    tifffile.imwrite(tmp_path / "m.tif", (mask > 0).astype(np.uint8) * 255)
    tifffile.imwrite(tmp_path / "labels.tif", mask.astype(np.uint16))
    out = tmp_path / "out"
    rc = main(["synthesize", str(tmp_path / "m.tif"), str(tmp_path / "labels.tif"), "--out", str(out), "--n", "3",
               "--seed", "7", "--model", str(tiny_generator_checkpoint)])
    assert rc == 0
    imgs = [tifffile.imread(out / f"m_{k}.tif") for k in range(3)]
    assert all(i.shape == (75, 101) and i.dtype == np.uint8 for i in imgs)
    assert not np.array_equal(imgs[0], imgs[1])
    assert (out / "labels_2.tif").is_file()
    again = tmp_path / "again"
    main(["synthesize", str(tmp_path / "m.tif"), "--out", str(again), "--n", "1", "--seed", "7", "--model", str(tiny_generator_checkpoint)])
    assert np.array_equal(tifffile.imread(again / "m_0.tif"), imgs[0])
    tifffile.imwrite(tmp_path / "bad.tif", np.zeros((3, 20, 20, 5), np.uint8))
    assert main(["synthesize", str(tmp_path / "bad.tif"), "--out", str(out), "--model", str(tiny_generator_checkpoint)]) != 0


def test_synthesize_keeps_the_masks_pixel_size_and_notes_an_empty_mask(tmp_path, tiny_generator_checkpoint, capsys):
    from napari_nanogan.cli import main
    from napari_nanogan.io.images import labels_pixel_size_nm, write_labels

    mask = particle_labels((64, 80), n_particles=8, mean_diameter=12, seed=3)
    write_labels(tmp_path / "a_labels.tif", mask, pixel_size_nm=7.344)  # what `nanogan segment` writes
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((64, 80), np.uint8))
    model = ["--model", str(tiny_generator_checkpoint)]
    assert main(["synthesize", str(tmp_path / "a_labels.tif"), str(tmp_path / "empty.tif"), "--out",
                 str(tmp_path / "o"), *model]) == 0
    said = capsys.readouterr()
    assert "empty.tif has no particles: its images are substrate only" in said.err
    assert "a_labels_0.tif, pixel size 7.344 nm" in said.out and "empty_0.tif, pixel size unknown" in said.out
    assert labels_pixel_size_nm(tmp_path / "o" / "a_labels_0.tif") == pytest.approx(7.344, rel=1e-5)
    assert labels_pixel_size_nm(tmp_path / "o" / "empty_0.tif") is None
    assert main(["synthesize", str(tmp_path / "empty.tif"), "--out", str(tmp_path / "p"), "--pixel-size", "2",
                 *model]) == 0
    assert labels_pixel_size_nm(tmp_path / "p" / "empty_0.tif") == pytest.approx(2.0)


def test_synthesize_and_export_take_a_masks_pixel_size_from_the_image_of_its_name(tmp_path, tiny_generator_checkpoint):
    """``masks/f_m.tif`` (a plain annotation, no pixel size of its own) beside ``images/f.tif`` (7.344 nm): the
    images drawn from it and the exported pairs get 7.344 nm, as `nanogan measure` reads the mask; they had none."""
    import json

    from napari_nanogan.cli import main
    from napari_nanogan.io.images import labels_pixel_size_nm

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = particle_labels((64, 80), n_particles=8, mean_diameter=12, seed=3)
    tifffile.imwrite(tmp_path / "masks" / "f_m.tif", ((mask > 0) * 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "images" / "f.tif", np.zeros((64, 80), np.uint8), resolution=(1e7 / 7.344, 1e7 / 7.344),
                     resolutionunit="CENTIMETER")
    model = ["--model", str(tiny_generator_checkpoint)]
    assert main(["synthesize", str(tmp_path / "masks" / "f_m.tif"), "--out", str(tmp_path / "o"), *model]) == 0
    assert labels_pixel_size_nm(tmp_path / "o" / "f_m_0.tif") == pytest.approx(7.344, rel=1e-5)
    assert main(["export", "--masks", str(tmp_path / "masks" / "f_m.tif"), "--out", str(tmp_path / "pairs"),
                 "--n", "1", *model]) == 0
    entry = json.loads((tmp_path / "pairs" / "manifest.json").read_text())["pairs"][0]
    assert entry["pixel_size_nm"] == pytest.approx(7.344, rel=1e-5)


def test_ema_warms_up_and_follows_the_trained_generator(tmp_path):
    """The sampled (EMA) generator must not stay near its random initialisation in short runs."""
    from napari_nanogan.training.cyclegan import CycleGAN, ema_decay_at

    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10**6, 0.999) == 0.999
    assert ema_decay_at(500, 0.999) < 0.99  # a constant 0.999 would keep 61 % of the initialisation here
    torch.manual_seed(0)
    init = CycleGAN(SMALL_G, SMALL_S).mask_to_image.state_dict()
    _gan(tmp_path, 3)
    state = load_checkpoint(tmp_path / "last.pt")
    raw = {k[len("mask_to_image."):]: v for k, v in state["state_dict"].items() if k.startswith("mask_to_image.")}
    moved = lambda a: sum(float((a[k].float() - init[k].float()).abs().sum()) for k in init)  # noqa: E731
    # after 3 steps the EMA has moved most of the way the raw weights moved (constant 0.999: 0.3 %)
    assert moved(state["ema"]) > 0.5 * moved(raw)


def test_resuming_a_pre_warmup_checkpoint_restarts_the_average(tmp_path):
    """A run saved before the EMA warm-up existed has an average that is part random
    initialisation; on resume it restarts from the trained generator weights."""
    from napari_nanogan.models.checkpoint import save_checkpoint

    _gan(tmp_path, 2, stop_after=1)
    state = load_checkpoint(tmp_path / "last.pt")
    del state["training"]["ema_warmup"]
    state["ema"] = {k: torch.zeros_like(v) for k, v in state["ema"].items()}  # an average far from the weights
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.warns(UserWarning, match="restarting the average"):
        _gan(tmp_path, 2)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["training"]["ema_warmup"] is True
    raw = {k[len("mask_to_image."):]: v for k, v in state["state_dict"].items() if k.startswith("mask_to_image.")}
    weight = next(k for k in raw if k.endswith("weight") and raw[k].abs().sum() > 0)
    # kept (zeros, 1 step of decay 0.999) it would be 0.1 % of the weights; restarted, it is them
    assert torch.allclose(state["ema"][weight], raw[weight], atol=0.05 * float(raw[weight].abs().max()))


def test_sem_noise_reaches_the_target_level_and_is_seeded():
    from scipy import ndimage as ndi

    from napari_nanogan.synthesis.finishing import _RESIDUAL_GAIN, add_sem_noise, noise_level

    assert noise_level(np.random.default_rng(0).normal(0, 1, (512, 512))) == pytest.approx(_RESIDUAL_GAIN, rel=0.02)
    smooth = np.clip(100 + 240 * ndi.gaussian_filter(np.random.default_rng(1).normal(size=(256, 256)), 6), 0, 255)
    smooth = smooth.astype(np.uint8)
    noisy = add_sem_noise(smooth, 4.0, seed=2)
    assert noisy.dtype == np.uint8 and noisy.shape == smooth.shape
    assert noise_level(smooth) < 1.0 and noise_level(noisy) == pytest.approx(4.0, rel=0.1)
    np.testing.assert_array_equal(noisy, add_sem_noise(smooth, 4.0, seed=2))
    assert not np.array_equal(noisy, add_sem_noise(smooth, 4.0, seed=3))
    assert add_sem_noise(noisy, 2.0, seed=4) is noisy  # already noisier than the target


def test_generator_finishing_adds_noise_and_round_trips(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint
    from napari_nanogan.synthesis import Generator, synthesize
    from napari_nanogan.synthesis.finishing import noise_level

    data = load_checkpoint(tiny_generator_checkpoint, kind="generator")
    data.pop("format_version")
    save_checkpoint(tmp_path / "noisy.pt", {**data, "postprocess": {"noise_residual": 30.0}})
    save_checkpoint(tmp_path / "blurred.pt", {**data, "postprocess": {"blur_sigma": 1.0}})
    plain = Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu")
    noisy = Generator.from_checkpoint(tmp_path / "noisy.pt", device="cpu")
    assert plain.finishing.noise_residual == 0 and noisy.finishing.noise_residual == 30.0
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:80] = 1
    raw = synthesize(mask, noisy, seed=5, raw=True)
    np.testing.assert_array_equal(raw, synthesize(mask, plain, seed=5))
    out = synthesize(mask, noisy, seed=5)
    assert noise_level(raw) < 15 and noise_level(out) == pytest.approx(30.0, rel=0.15)
    np.testing.assert_array_equal(out, synthesize(mask, noisy, seed=5))
    blurred = synthesize(mask, Generator.from_checkpoint(tmp_path / "blurred.pt", device="cpu"), seed=5)
    assert blurred.dtype == np.uint8 and noise_level(blurred) < 0.6 * noise_level(raw)


def test_generator_finishing_calibrates_grey_levels(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.models.checkpoint import load_checkpoint, save_checkpoint
    from napari_nanogan.synthesis import Generator, synthesize
    from napari_nanogan.config import Finishing

    post = Finishing(gain=0.5, offset=40.0)
    assert Finishing.from_dict(post.to_dict()) == post
    assert Finishing.from_dict({"noise_residual": 2.0}) == Finishing(noise_residual=2.0)  # older files
    data = load_checkpoint(tiny_generator_checkpoint, kind="generator")
    data.pop("format_version")
    save_checkpoint(tmp_path / "post.pt", {**data, "postprocess": post.to_dict()})
    gen = Generator.from_checkpoint(tmp_path / "post.pt", device="cpu")
    assert gen.finishing == post
    mask = np.zeros((128, 128), np.uint8)
    mask[30:60, 40:80] = 1
    raw = synthesize(mask, gen, seed=5, raw=True).astype(np.float32)
    out = synthesize(mask, gen, seed=5)
    np.testing.assert_array_equal(out, synthesize(mask, gen, seed=5))
    assert np.abs(out - np.clip(np.round(0.5 * raw + 40), 0, 255)).max() <= 1


def _grid_of_particles(n_side=5, size=20, gap=12):
    side = n_side * (size + gap) + gap
    labels = np.zeros((side, side), np.int32)
    for i in range(n_side):
        for j in range(n_side):
            y, x = gap + i * (size + gap), gap + j * (size + gap)
            labels[y:y + size, x:x + size] = 1 + i * n_side + j
    return labels


def test_particle_contrast_varies_per_particle_seeded_and_is_measured_back():
    from napari_nanogan.synthesis.finishing import particle_contrast_spread, vary_particle_contrast

    labels = _grid_of_particles(8)
    image = np.where(labels > 0, 150.0, 40.0).astype(np.float32)
    assert particle_contrast_spread([image], [labels]) == 0.0  # evenly lit
    out = vary_particle_contrast(image, labels, 0.4, seed=3)
    np.testing.assert_array_equal(out, vary_particle_contrast(image, labels, 0.4, seed=3))
    assert not np.array_equal(out, vary_particle_contrast(image, labels, 0.4, seed=4))
    np.testing.assert_array_equal(vary_particle_contrast(image, labels, 0.0, seed=3), image)
    assert np.allclose(out[labels == 0][:50], 40.0)  # far from particles, the background is untouched
    centres = np.array([out[labels == k].reshape(20, 20)[8:12, 8:12].mean() for k in range(1, 65)]) - 40
    assert 0.25 < np.std(np.log(centres)) < 0.5  # log-normal, SD 0.4, cut at 2 SD
    assert particle_contrast_spread([out], [labels]) == pytest.approx(0.4, abs=0.12)
    # a particle keeps one factor: its contrast is flat inside (away from the blurred outline)
    inner = out[labels == 1].reshape(20, 20)[3:-3, 3:-3]
    assert inner.max() - inner.min() < 1e-3


def test_finishing_varies_particles_only_when_told_and_old_files_vary_none(tmp_path, tiny_generator_checkpoint):
    from napari_nanogan.config import Finishing
    from napari_nanogan.models.checkpoint import save_checkpoint
    from napari_nanogan.synthesis.finishing import particle_contrast_spread

    with pytest.raises(ValueError, match="particle_spread"):
        Finishing(particle_spread=-0.1)
    assert Finishing.from_dict({"gain": 0.8}).particle_spread == 0.0  # files from before it existed
    data = load_checkpoint(tiny_generator_checkpoint, kind="generator")
    data.pop("format_version")
    save_checkpoint(tmp_path / "varied.pt", {**data, "postprocess": Finishing(particle_spread=0.5).to_dict()})
    plain = Generator.from_checkpoint(tiny_generator_checkpoint, device="cpu")
    varied = Generator.from_checkpoint(tmp_path / "varied.pt", device="cpu")
    labels = _grid_of_particles(6, size=24)
    a, b = synthesize(labels, plain, seed=2), synthesize(labels, varied, seed=2)
    np.testing.assert_array_equal(b, synthesize(labels, varied, seed=2))
    assert particle_contrast_spread([b], [labels]) > particle_contrast_spread([a], [labels]) + 0.2
    # a boolean mask is one instance per connected particle, as instance labels are
    np.testing.assert_array_equal(synthesize(labels > 0, varied, seed=2), b)
    from napari_nanogan.synthesis.finishing import apply_finishing, finish

    raw = synthesize(labels, varied, seed=2, raw=True)
    for binary in (labels > 0, (labels > 0).astype(np.uint8)):  # boolean or 0/1: split into particles
        np.testing.assert_array_equal(apply_finishing(raw, varied.finishing, 2, binary),
                                      apply_finishing(raw, varied.finishing, 2, labels))
        np.testing.assert_array_equal(finish(raw, binary, varied, 2), b)
    with pytest.raises(ValueError, match="finite"):
        Finishing(particle_spread=float("inf"))


def test_fit_finishing_measures_the_spread_real_images_have_beyond_the_generators(tiny_generator):
    from napari_nanogan.synthesis.finishing import vary_particle_contrast
    from napari_nanogan.training.amend import fit_finishing

    labels = _grid_of_particles(6, size=24)
    even = np.where(labels > 0, 160.0, 50.0)
    varied = np.clip(vary_particle_contrast(even, labels, 0.45, seed=1), 0, 255).astype(np.uint8)
    flat = fit_finishing([even], generator=tiny_generator, pairs=[(even, labels)])
    fitted = fit_finishing([varied], generator=tiny_generator, pairs=[(varied, labels)])
    assert flat.particle_spread < 0.1 and 0.25 < fitted.particle_spread < 0.6
    assert fit_finishing([varied], generator=tiny_generator, pairs=[(varied, labels)],
                         particle_spread=0.0).particle_spread == 0.0
    assert fit_finishing([varied]).particle_spread == 0.0  # nothing to measure it on
    with pytest.raises(ValueError, match="spread"):
        fit_finishing([varied], particle_spread=-1.0)


def test_shipped_generators_render_their_modality_and_segment_back():
    """`default` makes SEM (bright particles on a dark substrate), `tem` bright-field TEM (dark on bright).

    Both are varied across seeds and faithful: the shipped segmenters find the mask again.
    """
    from napari_nanogan.segmentation import segment
    from napari_nanogan.metrics.segmentation import foreground_scores
    from napari_nanogan.models.registry import SHIPPED_GENERATORS
    from napari_nanogan.synthesis import load_generator
    from napari_nanogan.segmentation import load_segmenter

    assert set(SHIPPED_GENERATORS) == {"default", "tem"}
    labels = particle_labels((192, 256), n_particles=30, mean_diameter=24, seed=3)
    segmenter = load_segmenter("auto", device="cpu")
    for name, dark in (("default", False), ("tem", True)):
        generator = load_generator(name, device="cpu")
        images = [synthesize(labels, generator, seed=s) for s in range(3)]
        assert all(im.shape == labels.shape and im.dtype == np.uint8 for im in images)
        for im in images:
            inside, outside = float(np.median(im[labels > 0])), float(np.median(im[labels == 0]))
            assert (outside - inside if dark else inside - outside) > 30, (name, inside, outside)
        assert np.std(np.stack(images).astype(float), axis=0).mean() > 2.0, name  # the styles differ
        assert foreground_scores(labels, segment(images[0], segmenter, info_bar=None).labels)[0] > 0.85, name


def test_lines_between_touching_particles_are_half_particle_for_the_generator():
    from napari_nanogan.data.targets import separator_lines
    from napari_nanogan.synthesis.pipeline import CONTACT_LEVEL, mask_maps

    labels = np.zeros((20, 30), np.int32)
    labels[4:14, 3:12] = 1
    labels[4:14, 13:22] = 2  # a 1-px line at column 12 between two particles
    labels[4:14, 25:29] = 3  # alone, 3 px away
    sep = separator_lines(labels)
    assert sep[4:14, 12].all() and sep.sum() == 10 + 2  # the line, and a corner pixel at each end
    maps = mask_maps(labels)
    assert (maps[0][sep] == CONTACT_LEVEL).all()
    assert (maps[0][(labels == 0) & ~sep] == 0).all() and (maps[0][labels > 0] == 1).all()
    assert not maps[1][sep].any()  # the interiors stay apart


@requires_shared
def test_contact_level_agrees_with_the_reference_tool():
    import importlib.util

    from bench.seam_level import contact_level
    from napari_nanogan.data.datasets import load_samples, shared_splits

    spec = importlib.util.spec_from_file_location("seam", DATA.parent / "tools" / "seam.py")
    seam = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seam)
    level = seam.level
    sample = load_samples(shared_splits(DATA)["bam"]["train"][:1], domain="bam")[0]
    assert contact_level(sample.image, sample.labels) == pytest.approx(level(sample.image, sample.labels), abs=1e-9)


def test_bf16_sampling_matches_fp32_and_leaves_the_weights_fp32(monkeypatch):
    """Where the CPU runs bf16 natively, generators sample from a bf16 copy of their networks (the
    synthesis's default there): the images are within a few grey levels of fp32's, and the weights
    a generator saves and trains stay fp32."""
    from napari_nanogan.synthesis import load_generator

    labels = particle_labels((192, 256), n_particles=30, mean_diameter=24, seed=3)
    monkeypatch.setenv("NANOGAN_PRECISION", "fp32")
    fp32 = load_generator("default", device="cpu")
    monkeypatch.setenv("NANOGAN_PRECISION", "bf16")
    bf16 = load_generator("default", device="cpu")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert (bf16.texture.precision, bf16.particle_texture.precision) == ("bf16", "bf16")
    for seed in range(2):
        a, b = synthesize(labels, fp32, seed=seed), synthesize(labels, bf16, seed=seed)
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 4, (diff.mean(), diff.max())
    assert fp32.sampler() is fp32.network
    fp32.use_precision("bf16")  # switching drops the cached sampler, the textures' too
    assert fp32.sampler() is not fp32.network and fp32.texture.sampler() is not fp32.texture.network
    np.testing.assert_array_equal(synthesize(labels, fp32, seed=1), synthesize(labels, bf16, seed=1))
    for part in (bf16.sampler(), bf16.texture.sampler(), bf16.particle_texture.sampler()):
        assert {p.dtype for p in part.parameters()} == {torch.bfloat16}
    for part in (bf16.network, bf16.texture.network, bf16.particle_texture.network):
        assert {p.dtype for p in part.parameters()} == {torch.float32}
