"""CLIP encoder and aesthetic predictor: tiny profile, real loader paths, missing weights."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curation_assets.models import registry
from curation_assets.models.aesthetics import (
    AESTHETIC_EMBED_DIM,
    AESTHETIC_HEAD,
    AESTHETIC_HEAD_FILE,
    AESTHETIC_HEAD_KEYS,
    aesthetic_head_path,
    build_aesthetic_mlp,
    load_aesthetic_scorer,
)
from curation_assets.models.clip import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    ClipEncoder,
    clip_weights_dir,
    frame_text_similarity,
    hf_hub_source,
    load_clip,
    locate_clip_weights,
    reduce_scores,
    register_clip_config,
    tiny_clip_config,
)
from curation_assets.models.registry import MissingWeightsError, ModelSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ModelSettings(profile="tiny", model_dir=None, device="cpu", batch_size=4)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    registry.clear_cache()
    yield
    registry.clear_cache()


def _frames(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.RandomState(seed)
    sizes = [(120, 200), (224, 224), (300, 160), (64, 96)]
    return [rng.randint(0, 256, size=(*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


# --------------------------------------------------------------------------- import cost


def test_importing_model_modules_does_not_import_torch():
    code = (
        "import sys, curation_assets.models.clip, curation_assets.models.aesthetics\n"
        "heavy = [m for m in ('torch', 'open_clip', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


# --------------------------------------------------------------------------- tiny CLIP


def test_tiny_clip_shapes_and_unit_norm():
    enc = load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY)
    assert isinstance(enc, ClipEncoder)
    assert (enc.profile, enc.model_name, enc.pretrained) == ("tiny", "ViT-B-32", "openai")
    assert "tiny" in enc.model_id and enc.weights_path is None
    assert not enc.model.training
    assert enc.embed_dim == 512  # follows ViT-B-32's config

    images = enc.encode_images(_frames(6))  # batch_size 4 -> two batches
    assert images.shape == (6, 512) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)

    texts = enc.encode_texts(["a dog running on a beach", "a city at night"])
    assert texts.shape == (2, 512) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)

    assert enc.encode_images([]).shape == (0, 512)
    assert enc.encode_texts([]).shape == (0, 512)


def test_tiny_clip_is_cached_and_deterministic():
    frames = _frames(2, seed=3)
    first = load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY)
    assert load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY) is first
    a = first.encode_images(frames)
    # the same frame gives the same embedding, alone or in a batch
    np.testing.assert_allclose(first.encode_images(frames[:1])[0], a[0], atol=1e-6)

    registry.clear_cache()
    import torch

    torch.manual_seed(12345)  # the tiny weights must not depend on the global RNG
    second = load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY)
    assert second is not first
    np.testing.assert_array_equal(second.encode_images(frames), a)
    for (name, p1), (_, p2) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(p1, p2), name


def test_long_text_is_truncated_to_77_tokens():
    enc = load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY)
    assert enc.context_length == 77
    head = " ".join(f"word{i}" for i in range(400))
    long_a = (head + " cat" * 2000)[:5000]
    long_b = head + " dog" * 10
    assert len(long_a) == 5000
    emb = enc.encode_texts([long_a, long_b, ""])
    assert emb.shape == (3, 512) and np.isfinite(emb).all()
    # only the first 77 tokens count: texts that differ after them embed identically
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)


def test_frame_text_similarity_is_cosine():
    frames = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 4.0, 0.0], [-1.0, 0.0, 0.0]])
    text = np.array([1.0, 1.0, 0.0])
    expected = np.array([1 / np.sqrt(2), 1 / np.sqrt(2), 7 / (5 * np.sqrt(2)), -1 / np.sqrt(2)])
    sims = frame_text_similarity(frames, text)
    assert sims.shape == (4,)
    np.testing.assert_allclose(sims, expected, rtol=1e-6)
    assert np.isnan(frame_text_similarity(np.zeros((1, 3)), text)).all()
    assert frame_text_similarity(np.zeros((0, 3)), text).shape == (0,)
    with pytest.raises(ValueError):
        frame_text_similarity(frames, np.ones(4))


def test_frame_text_similarity_on_tiny_embeddings_matches_dot_product():
    enc = load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, TINY)
    images = enc.encode_images(_frames(3))
    text = enc.encode_texts(["a red car"])[0]
    np.testing.assert_allclose(frame_text_similarity(images, text), images @ text, atol=1e-5)


def test_reduce_scores_modes():
    values = [0.2, 0.5, 0.8, 0.1]
    assert reduce_scores(values, "avg") == pytest.approx(0.4)
    assert reduce_scores(values, "max") == pytest.approx(0.8)
    assert reduce_scores(values, "min") == pytest.approx(0.1)
    assert reduce_scores(np.array(values)) == pytest.approx(0.4)
    assert np.isnan(reduce_scores([], "max"))
    with pytest.raises(ValueError, match="median"):
        reduce_scores(values, "median")


# --------------------------------------------------------------------------- real loader path


@pytest.mark.parametrize("filename", ["open_clip_model.safetensors", "weights.pt"])
def test_real_profile_loads_weights_file_from_model_dir(tmp_path, empty_hf_home, filename):
    import open_clip
    import torch

    name, tag = "curation-test-clip-e32", "testtag"
    register_clip_config(name, tiny_clip_config(embed_dim=32))
    register_clip_config(name, tiny_clip_config(embed_dim=32))  # idempotent
    assert name in open_clip.list_models()
    torch.manual_seed(7)
    source = open_clip.create_model(name, pretrained=None)
    saved = {k: v.detach().clone() for k, v in source.state_dict().items()}

    folder = clip_weights_dir(tmp_path / "models", name, tag)
    folder.mkdir(parents=True)
    if filename.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in saved.items()}, str(folder / filename))
    else:
        torch.save(saved, folder / filename)

    settings = ModelSettings(profile="real", model_dir=tmp_path / "models", device="cpu")
    enc = load_clip(name, tag, settings)
    assert enc.profile == "real" and enc.weights_path == str(folder / filename)
    assert enc.model_id == f"open_clip:{name}/{tag}"
    loaded = enc.model.state_dict()
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key].cpu(), value), key
    emb = enc.encode_images(_frames(2))
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # real weights differ from the tiny profile's random ones
    tiny = load_clip(name, tag, TINY)
    assert not np.allclose(tiny.encode_images(_frames(2)), emb)


def test_openai_tag_resolves_to_hf_hub_repo():
    assert hf_hub_source("ViT-B-32", "openai") == (
        "timm/vit_base_patch32_clip_224.openai",
        ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
    )
    assert hf_hub_source("ViT-L-14", "openai")[0] == "timm/vit_large_patch14_clip_224.openai"


def _fake_hub_file(hf_home: Path, repo_id: str, filename: str) -> Path:
    """A file laid out as huggingface_hub caches it (refs/main -> snapshots/<commit>/)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    target = repo / "snapshots" / "0123abcd" / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(b"weights")
    return target


def test_openai_weights_are_found_in_the_hf_cache_after_the_model_dir(tmp_path, empty_hf_home):
    """Where open_clip's own pretrained='openai' download lands; found without any hub call."""
    cached = _fake_hub_file(empty_hf_home, "timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin")
    settings = ModelSettings(profile="real", model_dir=tmp_path / "models", device="cpu")
    path, looked_in = locate_clip_weights("ViT-B-32", "openai", settings)
    assert path == str(cached) and len(looked_in) == 2
    # a file under the model dir wins over the cache
    folder = clip_weights_dir(tmp_path / "models", "ViT-B-32", "openai")
    folder.mkdir(parents=True)
    (folder / "open_clip_model.safetensors").write_bytes(b"weights")
    path, _ = locate_clip_weights("ViT-B-32", "openai", settings)
    assert path == str(folder / "open_clip_model.safetensors")


def test_real_profile_missing_weights_fails_fast(tmp_path, empty_hf_home):
    model_dir = tmp_path / "empty_models"
    model_dir.mkdir()
    settings = ModelSettings(profile="real", model_dir=model_dir, device="cpu")
    with pytest.raises(MissingWeightsError) as info:
        load_clip(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, settings)
    message = str(info.value)
    assert "ViT-B-32" in message and "openai" in message
    assert "CURATION_MODEL_DIR" in message
    assert str(clip_weights_dir(model_dir, "ViT-B-32", "openai")) in message
    assert "timm/vit_base_patch32_clip_224.openai" in message
    assert str(empty_hf_home) in message
    assert "create_model_and_transforms('ViT-B-32', pretrained='openai')" in message


def test_real_profile_without_model_dir_names_the_env_var(empty_hf_home):
    with pytest.raises(MissingWeightsError, match="CURATION_MODEL_DIR"):
        load_clip("ViT-L-14", "openai", ModelSettings(profile="real", model_dir=None, device="cpu"))


def test_real_profile_unusable_weights_file_is_reported(tmp_path, empty_hf_home):
    name, tag = "curation-test-clip-e32", "broken"
    register_clip_config(name, tiny_clip_config(embed_dim=32))
    folder = clip_weights_dir(tmp_path, name, tag)
    folder.mkdir(parents=True)
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="could not be loaded"):
        load_clip(name, tag, ModelSettings(profile="real", model_dir=tmp_path, device="cpu"))


# --------------------------------------------------------------------------- aesthetics


def _random_head_state(scale: float = 0.05, seed: int = 0) -> dict:
    import torch

    gen = torch.Generator().manual_seed(seed)
    shapes = {
        "layers.0": (1024, 768),
        "layers.2": (128, 1024),
        "layers.4": (64, 128),
        "layers.6": (16, 64),
        "layers.7": (1, 16),
    }
    state = {}
    for prefix, (out_f, in_f) in shapes.items():
        state[f"{prefix}.weight"] = torch.randn(out_f, in_f, generator=gen) * scale
        state[f"{prefix}.bias"] = torch.randn(out_f, generator=gen) * scale
    state["layers.7.bias"] = torch.tensor([5.0])
    return state


def test_aesthetic_mlp_has_the_published_keys():
    mlp = build_aesthetic_mlp()
    assert tuple(mlp.state_dict().keys()) == AESTHETIC_HEAD_KEYS
    assert mlp.load_state_dict(_random_head_state(), strict=True).missing_keys == []


@pytest.mark.parametrize("bare_sequential", [False, True])
def test_aesthetic_head_file_loads_strictly_from_model_dir(tmp_path, empty_hf_home, bare_sequential):
    import torch

    state = _random_head_state()
    path = aesthetic_head_path(tmp_path)
    path.parent.mkdir(parents=True)
    to_save = {k[len("layers."):]: v for k, v in state.items()} if bare_sequential else state
    torch.save(to_save, path)

    backbone = load_clip("ViT-L-14", "openai", TINY)
    scorer = load_aesthetic_scorer(ModelSettings(profile="real", model_dir=tmp_path, device="cpu"), backbone=backbone)
    assert scorer.head_path == str(path)
    assert scorer.profile == "tiny"  # tiny backbone: never mistaken for real scores
    assert AESTHETIC_HEAD in scorer.model_id and "tiny" in scorer.model_id
    for key, value in state.items():
        assert torch.equal(scorer.head.state_dict()[key], value), key

    frames = _frames(3)
    scores = scorer.score(frames)
    assert scores.shape == (3,) and scores.dtype == np.float32
    # the head is a linear stack: check against a hand computation on the embeddings
    emb = backbone.encode_images(frames).astype(np.float64)
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for prefix in ("layers.0", "layers.2", "layers.4", "layers.6", "layers.7"):
        x = x @ state[f"{prefix}.weight"].double().numpy().T + state[f"{prefix}.bias"].double().numpy()
    np.testing.assert_allclose(scores, x[:, 0] / 10.0, rtol=1e-4, atol=1e-5)
    assert np.all((scores > 0.0) & (scores < 1.0))


def test_aesthetic_head_with_wrong_keys_is_rejected(tmp_path, empty_hf_home):
    import torch

    state = _random_head_state()
    state.pop("layers.7.bias")
    path = aesthetic_head_path(tmp_path)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    backbone = load_clip("ViT-L-14", "openai", TINY)
    with pytest.raises(MissingWeightsError, match="layers.7.bias"):
        load_aesthetic_scorer(ModelSettings(profile="real", model_dir=tmp_path, device="cpu"), backbone=backbone)


def test_tiny_aesthetics_scores_are_sensible_and_deterministic():
    scorer = load_aesthetic_scorer(TINY)
    assert scorer.profile == "tiny" and "tiny" in scorer.model_id
    assert scorer.clip.embed_dim == AESTHETIC_EMBED_DIM
    assert load_aesthetic_scorer(TINY) is scorer
    frames = _frames(5)
    scores = scorer.score(frames)
    assert scores.shape == (5,) and np.isfinite(scores).all()
    assert np.all((scores > 0.0) & (scores < 1.0))
    assert scorer.score([]).shape == (0,)

    registry.clear_cache()
    again = load_aesthetic_scorer(TINY)
    assert again is not scorer
    np.testing.assert_array_equal(again.score(frames), scores)


def test_tiny_aesthetics_same_scores_in_another_process():
    frames = _frames(2, seed=11)
    local = load_aesthetic_scorer(TINY).score(frames)
    code = (
        "import os, sys, numpy as np\n"
        "os.environ['HF_HUB_OFFLINE'] = '1'\n"
        "sys.path.insert(0, os.getcwd())\n"
        "from curation_assets_tests.test_models_clip import _frames, TINY\n"
        "from curation_assets.models.aesthetics import load_aesthetic_scorer\n"
        "print(repr(load_aesthetic_scorer(TINY).score(_frames(2, seed=11)).tolist()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120, capture_output=True, text=True
    ).stdout
    remote = np.array(eval(out.strip().splitlines()[-1]), dtype=np.float32)
    np.testing.assert_array_equal(remote, local)


def test_missing_aesthetic_head_names_the_file(tmp_path, empty_hf_home):
    backbone = load_clip("ViT-L-14", "openai", TINY)
    settings = ModelSettings(profile="real", model_dir=tmp_path, device="cpu")
    with pytest.raises(MissingWeightsError) as info:
        load_aesthetic_scorer(settings, backbone=backbone)
    message = str(info.value)
    assert AESTHETIC_HEAD_FILE in message
    assert str(aesthetic_head_path(tmp_path)) in message
    assert "CURATION_MODEL_DIR" in message
    assert "improved-aesthetic-predictor" in message


def test_real_aesthetics_without_backbone_weights_names_vit_l14(tmp_path, empty_hf_home):
    with pytest.raises(MissingWeightsError, match="ViT-L-14"):
        load_aesthetic_scorer(ModelSettings(profile="real", model_dir=tmp_path, device="cpu"))


def test_aesthetics_rejects_a_backbone_of_the_wrong_size():
    with pytest.raises(ValueError, match="768"):
        load_aesthetic_scorer(TINY, backbone=load_clip("ViT-B-32", "openai", TINY))
