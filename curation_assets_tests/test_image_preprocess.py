"""Batched tensor preprocessing for CLIP / aesthetics against open_clip's own PIL transform:
same pixels (within PIL's rounding), same embeddings and scores on the real clips' frames."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path

import numpy as np
import pytest

from curation_assets.models.clip import ClipEncoder, load_clip
from curation_assets.models.image_tensors import TensorPreprocess, from_open_clip
from curation_assets.models.registry import ModelSettings
from real_frames import real_frames

TINY = ModelSettings(profile="tiny", device="cpu")
HEAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "weights" / "aesthetic_head" / "sac+logos+ava1-l14-linearMSE.pth"


def _frame(h: int, w: int, seed: int) -> np.ndarray:
    """A frame with edges and smooth areas (not pure noise, which maximizes resize error)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x // 16 + y // 16) % 2) * 255], -1)
    noise = rng.integers(-20, 21, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(360, 640), (640, 480), (640, 362), (224, 300), (120, 90), (225, 224), (999, 1001)])
def test_tensor_pixels_match_open_clip_pil(shape):
    encoder = load_clip("ViT-B-32", "openai", TINY)
    frames = [_frame(*shape, seed) for seed in range(2)]
    pil = encoder.preprocess_images(frames, "pil").numpy()
    tensor = encoder.preprocess_images(frames, "tensor").numpy()
    assert tensor.shape == pil.shape == (2, 3, 224, 224)
    # back to grey levels: PIL's fixed-point filter and torch's differ by one level at most
    # when shrinking (video frames), two when enlarging a frame smaller than 224
    std = np.asarray(encoder.tensor_preprocess.std).reshape(1, 3, 1, 1)
    levels = np.abs(pil - tensor) * std * 255
    assert levels.max() <= (1.01 if min(shape) >= 224 else 2.01), levels.max()
    assert levels.mean() < 0.05


def test_mixed_sizes_keep_their_order():
    encoder = load_clip("ViT-B-32", "openai", TINY)
    frames = [_frame(360, 640, 1), _frame(640, 360, 2), _frame(360, 640, 3)]
    together = encoder.preprocess_images(frames, "tensor").numpy()
    one_by_one = np.concatenate([encoder.preprocess_images([f], "tensor").numpy() for f in frames])
    np.testing.assert_array_equal(together, one_by_one)


def test_output_size_follows_torchvision():
    pre = TensorPreprocess(resize=224, crop=224, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert pre.output_size(360, 640) == (224, 398)
    assert pre.output_size(640, 362) == (396, 224)
    assert pre.output_size(224, 224) == (224, 224)


def test_other_open_clip_transforms_keep_pil():
    import open_clip

    assert from_open_clip(open_clip.image_transform(224, is_train=False)) is not None
    for mode in ("longest", "squash"):
        assert from_open_clip(open_clip.image_transform(224, is_train=False, resize_mode=mode)) is None
    encoder = load_clip("ViT-B-32", "openai", TINY)
    assert encoder.resolved_preprocess() == "tensor"
    with pytest.raises(ValueError, match="preprocess_mode"):
        encoder.resolved_preprocess("gpu")


def _min_cosine(encoder: ClipEncoder, frames: list[np.ndarray]) -> tuple[float, float]:
    """(min cosine tensor vs PIL per frame, max cosine between frames of different clips)."""
    pil = encoder.encode_images(frames, "pil")
    tensor = encoder.encode_images(frames, "tensor")
    same = (pil * tensor).sum(axis=1)
    cross = pil @ pil.T
    owners = np.repeat(np.arange(len(frames) // 3), 3)
    return float(same.min()), float(cross[owners[:, None] != owners[None, :]].max())


@pytest.mark.slow
def test_real_clips_tiny_embeddings_and_aesthetics_match_pil():
    frames = [f for clip in real_frames().values() for f in clip]
    from curation_assets.models.aesthetics import load_aesthetic_scorer

    clip_cos, _ = _min_cosine(load_clip("ViT-B-32", "openai", TINY), frames)
    assert clip_cos >= 0.999
    if not HEAD.is_file():
        pytest.skip(f"aesthetic head weights absent: {HEAD}")
    scorer = load_aesthetic_scorer(TINY, head_path=HEAD)  # tiny ViT-L-14 backbone, real head
    assert scorer.head_path == str(HEAD)
    pil, tensor = scorer.score(frames, "pil"), scorer.score(frames, "tensor")
    assert np.abs(pil - tensor).max() <= 0.002
    assert np.ptp(pil) > 0.01  # the scores do move between frames: the bound above means something


@pytest.mark.slow
def test_real_clips_full_vit_b32_embeddings_match_pil():
    """The real ViT-B-32 architecture (random weights: the real ones cannot be had here)."""
    import open_clip
    import torch

    frames = [f for clip in real_frames().values() for f in clip]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    encoder = ClipEncoder(model, preprocess, open_clip.get_tokenizer("ViT-B-32"), device="cpu", model_name="ViT-B-32",
                          pretrained="random", profile="tiny", embed_dim=512)
    same, across = _min_cosine(encoder, frames)
    assert same >= 0.999
    assert across < 0.999  # different clips' frames are further apart than the bound


def test_videoblip_tensor_pixels_match_the_blip_processor():
    from curation_assets.models import videoblip as vb

    captioner = vb.load_captioner(vb.DEFAULT_CAPTIONER, TINY)
    assert captioner.preprocess_mode == "tensor" and captioner.batch_size == 8  # CPU default
    videos = [[_frame(360, 640, s) for s in range(3)], [_frame(640, 362, s) for s in range(2)]]
    tensor = captioner._pixel_values(videos, 0).numpy()
    captioner.preprocess_mode = "pil"
    try:
        pil = captioner._pixel_values(videos, 0).numpy()
        pil_captions = captioner.caption(videos)
    finally:
        captioner.preprocess_mode = "tensor"
    assert tensor.shape == pil.shape == (2, 3, vb.DEFAULT_NUM_FRAMES, 224, 224)
    std = np.asarray(captioner.tensor_preprocess.std).reshape(1, 3, 1, 1, 1)
    levels = np.abs(tensor - pil) * std * 255
    # the squash to 224x224 shrinks the two axes by different factors; PIL rounds to uint8
    # between its two passes in another order than torch, which moves a few pixels at the
    # synthetic frame's hard 0/255 edges by up to ~10 grey levels (mean well under one)
    assert levels[0].max() <= 1.01  # landscape 640x360: within one level
    assert levels.mean() < 0.5 and levels.max() <= 16
    assert captioner.caption(videos) == pil_captions


def test_caption_batch_follows_the_device(monkeypatch):
    from curation_assets.models.videoblip import CAPTION_BATCH_ENV, caption_batch_size

    monkeypatch.delenv(CAPTION_BATCH_ENV, raising=False)
    assert caption_batch_size("cpu") == 8
    monkeypatch.setenv(CAPTION_BATCH_ENV, "3")
    assert caption_batch_size("cpu") == 3
