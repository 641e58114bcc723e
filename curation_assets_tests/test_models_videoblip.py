"""VideoBLIP captioner: the video vision tower, deterministic captions, offline loading, missing weights."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curation_assets.models import videoblip as vb
from curation_assets.models.registry import MODEL_DIR_ENV, MissingWeightsError, ModelSettings, clear_cache

REPO_ROOT = Path(__file__).resolve().parents[1]
# CPU keeps the comparisons exact wherever the tests run; batch_size 2 exercises batching.
TINY = ModelSettings(profile="tiny", model_dir=None, device="cpu", batch_size=2)


def _videos() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)],
        [rng.integers(0, 256, (120, 90, 3), dtype=np.uint8) for _ in range(11)],
        [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)],
    ]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Building and comparing 32-wide test models is fastest on one thread (no contention on busy CI)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_import_does_not_import_torch():
    code = ("import sys, curation_assets.models.videoblip as m; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; print(m.DEFAULT_CAPTIONER)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "kpyu/video-blip-opt-2.7b-ego4d"


def test_frame_sampling_is_uniform_temporal_subsample():
    assert vb.sample_frame_indices(20, 8) == [0, 2, 5, 8, 10, 13, 16, 19]
    assert vb.sample_frame_indices(8, 8) == list(range(8))
    assert vb.sample_frame_indices(3, 8) == [0, 0, 0, 0, 1, 1, 1, 2]
    assert vb.sample_frame_indices(1, 8) == [0] * 8
    with pytest.raises(ValueError):
        vb.sample_frame_indices(0, 8)


def test_state_dict_keys_are_blip2s():
    from transformers import Blip2ForConditionalGeneration

    model, _, _ = vb.build_tiny_parts()
    assert isinstance(model, Blip2ForConditionalGeneration)
    assert isinstance(model.vision_model, vb.VideoBlipVisionModel)
    plain = Blip2ForConditionalGeneration(model.config)
    assert set(model.state_dict()) == set(plain.state_dict())
    assert all(model.state_dict()[k].shape == v.shape for k, v in plain.state_dict().items())


def test_vision_model_flattens_time_and_concatenates_over_time():
    import torch
    from transformers import Blip2VisionModel

    model, _, _ = vb.build_tiny_parts()
    video_tower = model.vision_model
    frame_tower = Blip2VisionModel(model.config.vision_config).eval()  # plain BLIP-2, same weights
    frame_tower.load_state_dict(video_tower.state_dict())

    batch, time_steps = 2, 3
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, time_steps, 224, 224, generator=generator)
    with torch.no_grad():
        out = video_tower(pixels, return_dict=True)
        per_frame = [[frame_tower(pixels[b : b + 1, :, t]).last_hidden_state for t in range(time_steps)]
                     for b in range(batch)]
    seq_len = per_frame[0][0].shape[1]
    assert seq_len == (224 // 32) ** 2 + 1
    assert out.last_hidden_state.shape == (batch, time_steps * seq_len, 32)
    assert out.pooler_output.shape == (batch, time_steps, 32)
    expected = torch.cat([torch.cat(frames, dim=1) for frames in per_frame], dim=0)
    torch.testing.assert_close(out.last_hidden_state, expected, rtol=1e-5, atol=1e-5)
    # frames are really different inputs: the blocks are not all equal
    assert not torch.allclose(expected[0, :seq_len], expected[0, seq_len : 2 * seq_len])
    # tuple output keeps the same layout
    with torch.no_grad():
        as_tuple = video_tower(pixels, return_dict=False)
    torch.testing.assert_close(as_tuple[0], out.last_hidden_state)


def test_tiny_captions_are_deterministic_one_per_video():
    captioner = vb.load_captioner(vb.DEFAULT_CAPTIONER, TINY)
    assert captioner.profile == "tiny" and captioner.model_id == vb.DEFAULT_CAPTIONER
    assert captioner.model.config.image_token_index is not None  # added on load
    assert vb.load_captioner(vb.DEFAULT_CAPTIONER, TINY) is captioner  # loaded once per process

    videos = _videos()
    single = captioner.caption(videos[:1])
    first = captioner.caption(videos)
    assert len(first) == len(videos) and all(isinstance(text, str) for text in first)
    assert all(text and text == text.strip() for text in first)
    assert first[0] == single[0]  # batching does not change a caption
    assert captioner.caption(videos) == first

    clear_cache()
    reloaded = vb.load_captioner(vb.DEFAULT_CAPTIONER, TINY)
    assert reloaded is not captioner
    assert reloaded.caption(videos) == first
    assert captioner.caption([]) == []
    assert captioner.params["num_beams"] == 4 and captioner.params["do_sample"] is False
    assert captioner.params["num_frames"] == vb.DEFAULT_NUM_FRAMES
    assert len(captioner.caption(videos[:2], prompt="Question: What is the camera wearer doing? Answer:")) == 2


def test_tiny_captions_match_across_processes():
    code = ("import os; os.environ['HF_HUB_OFFLINE']='1'; import json, numpy as np; "
            "from curation_assets.models import videoblip as vb; "
            "from curation_assets.models.registry import ModelSettings; "
            "rng = np.random.default_rng(3); v = [[rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(4)]]; "
            "c = vb.load_captioner(vb.DEFAULT_CAPTIONER, ModelSettings(profile='tiny', model_dir=None, device='cpu')); "
            "print(json.dumps(c.caption(v)))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr[-2000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 1


def test_bad_frames_are_rejected():
    captioner = vb.load_captioner(vb.DEFAULT_CAPTIONER, TINY)
    with pytest.raises(ValueError, match="no frames"):
        captioner.caption([[]])
    with pytest.raises(ValueError, match="uint8"):
        captioner.caption([[np.zeros((8, 8, 3), dtype=np.float32)]])
    gray_and_rgba = [[np.full((20, 20), 128, np.uint8)], [np.full((20, 20, 4), 128, np.uint8)]]
    assert len(captioner.caption(gray_and_rgba)) == 2


def _strip_image_token(checkpoint: Path) -> None:
    """Make the saved checkpoint look like kpyu's: no image_token_index key, no <image> in the tokenizer."""
    config = json.loads((checkpoint / "config.json").read_text())
    config.pop("image_token_index", None)
    config["transformers_version"] = "4.27.0.dev0"
    (checkpoint / "config.json").write_text(json.dumps(config))
    assert "<image>" not in (checkpoint / "tokenizer.json").read_text()


def test_real_profile_loads_a_saved_checkpoint(tmp_path, empty_hf_home):
    model_id = "someone/tiny-video-blip"
    checkpoint = vb.save_tiny_checkpoint(tmp_path / "models" / "hf" / model_id)
    _strip_image_token(checkpoint)
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in checkpoint.iterdir()}

    settings = ModelSettings(profile="real", model_dir=tmp_path / "models", device="cpu", batch_size=2)
    real = vb.load_captioner(model_id, settings)
    assert real.profile == "real" and real.model_id == model_id and real.source == str(checkpoint)
    assert real.model.config.image_token_index is not None
    assert real.tokenizer.convert_tokens_to_ids("<image>") == real.model.config.image_token_index
    assert real.model.language_model.get_input_embeddings().weight.shape[0] >= len(real.tokenizer)

    tiny = vb.load_captioner(model_id, TINY)
    videos = _videos()
    assert real.caption(videos) == tiny.caption(videos)
    prompt = "the camera wearer"
    assert real.caption(videos, prompt=prompt) == tiny.caption(videos, prompt=prompt)


def test_real_profile_reads_the_hugging_face_cache(tmp_path, empty_hf_home):
    model_id = "someone/cached-video-blip"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hf_home / "hub" / f"models--{model_id.replace('/', '--')}"
    vb.save_tiny_checkpoint(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)

    captioner = vb.load_captioner(model_id, ModelSettings(profile="real", model_dir=None, device="cpu"))
    assert captioner.source == str(repo / "snapshots" / commit)
    assert len(captioner.caption(_videos()[:1])) == 1


def test_missing_weights_fail_fast(tmp_path, empty_hf_home):
    settings = ModelSettings(profile="real", model_dir=tmp_path / "models", device="cpu")
    with pytest.raises(MissingWeightsError) as info:
        vb.load_captioner(vb.DEFAULT_CAPTIONER, settings)
    message = str(info.value)
    assert vb.DEFAULT_CAPTIONER in message
    assert MODEL_DIR_ENV in message
    assert str(tmp_path / "models" / "hf" / vb.DEFAULT_CAPTIONER) in message
    assert f"hf download {vb.DEFAULT_CAPTIONER} --local-dir ${MODEL_DIR_ENV}/hf/{vb.DEFAULT_CAPTIONER}" in message
    assert str(empty_hf_home / "hub") in message

    # no CURATION_MODEL_DIR at all: still fast, still says how
    with pytest.raises(MissingWeightsError, match=MODEL_DIR_ENV):
        vb.load_captioner(vb.DEFAULT_CAPTIONER, ModelSettings(profile="real", model_dir=None, device="cpu"))


def test_incomplete_checkpoint_is_missing_weights(tmp_path, empty_hf_home):
    model_id = "someone/no-weights"
    checkpoint = vb.save_tiny_checkpoint(tmp_path / "models" / "hf" / model_id)
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match="someone/no-weights"):
        vb.load_captioner(model_id, ModelSettings(profile="real", model_dir=tmp_path / "models", device="cpu"))
