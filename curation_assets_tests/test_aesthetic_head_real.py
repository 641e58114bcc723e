"""The published LAION aesthetic head, read by the project's loader, reproduces the reference
implementation's outputs.

`../shared/data/weights/aesthetic_head/` (beside the repository, not committed) holds
`sac+logos+ava1-l14-linearMSE.pth` byte for byte as published and the raw outputs of
improved-aesthetic-predictor's own MLP for four fixed unit vectors. The test goes through the
real lookup (`$CURATION_MODEL_DIR/aesthetics/<file>`, strict keys) and through the scorer's
embedding path (normalize, head, /10). Skips with a message when the folder is absent.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from curation_assets.models import registry
from curation_assets.models.aesthetics import (
    AESTHETIC_HEAD_FILE,
    AESTHETIC_HEAD_KEYS,
    aesthetic_head_path,
    load_aesthetic_head,
    load_aesthetic_scorer,
)
from curation_assets.models.clip import load_clip
from curation_assets.models.registry import ModelSettings

SHARED = Path(__file__).resolve().parents[2] / "shared"
HEAD_DIR = SHARED / "data" / "weights" / "aesthetic_head"
HEAD_FILE = HEAD_DIR / AESTHETIC_HEAD_FILE
REFERENCE = HEAD_DIR / "reference_outputs.json"
SHA256 = "21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0"


@pytest.fixture
def reference():
    if not (HEAD_FILE.is_file() and REFERENCE.is_file()):
        pytest.skip(f"real aesthetic head not available: {HEAD_FILE} and {REFERENCE.name} are absent "
                    "(they live beside the repository in ../shared, never committed)")
    registry.clear_cache()
    yield json.loads(REFERENCE.read_text())
    registry.clear_cache()


def _unit_vectors():
    """The reference's inputs: seed 0, torch.randn(4, 768), each row divided by its L2 norm."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 768, generator=g, dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


@pytest.fixture
def model_dir(tmp_path):
    """A model dir laid out as the README says, with the published file linked in."""
    path = aesthetic_head_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.symlink_to(HEAD_FILE)
    return tmp_path


def test_the_shared_file_is_the_published_head(reference):
    import hashlib

    assert hashlib.sha256(HEAD_FILE.read_bytes()).hexdigest() == SHA256
    assert len(reference["raw_outputs"]) == 4


def test_loader_reads_the_published_head_strictly_and_reproduces_the_reference(reference, model_dir, empty_hf_home):
    import torch

    head, source = load_aesthetic_head(ModelSettings(profile="real", model_dir=model_dir, device="cpu"))
    assert source == str(aesthetic_head_path(model_dir))
    # strict load: exactly the published keys, each tensor as stored in the file
    stored = torch.load(str(HEAD_FILE), map_location="cpu", weights_only=True)
    assert tuple(head.state_dict().keys()) == AESTHETIC_HEAD_KEYS
    assert set(stored) == set(AESTHETIC_HEAD_KEYS)
    for key in AESTHETIC_HEAD_KEYS:
        assert torch.equal(head.state_dict()[key], stored[key].float()), key
    assert not head.training  # eval mode: dropout off, outputs deterministic
    with torch.inference_mode():
        raw = head(_unit_vectors()).reshape(-1)
    assert raw.dtype == torch.float32
    np.testing.assert_allclose(raw.numpy(), np.array(reference["raw_outputs"], dtype=np.float32), rtol=0, atol=1e-4)


def test_scorer_embedding_path_gives_the_reference_over_ten(reference, model_dir, empty_hf_home):
    # The backbone's real weights are not available here; the tiny ViT-L/14 only supplies the
    # 768-d shape and batch size, the embeddings are the reference's fixed vectors.
    backbone = load_clip("ViT-L-14", "openai", ModelSettings(profile="tiny", model_dir=None, device="cpu", batch_size=3))
    scorer = load_aesthetic_scorer(ModelSettings(profile="real", model_dir=model_dir, device="cpu"), backbone=backbone)
    assert scorer.head_path == str(aesthetic_head_path(model_dir))
    # unnormalized input: the scorer normalizes again, as the reference's inputs are unit vectors
    scores = scorer.score_embeddings(_unit_vectors().numpy() * 3.0)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.array(reference["raw_outputs"], dtype=np.float32) / 10.0, rtol=0, atol=1e-5)


def test_head_path_override_reads_the_same_file(reference):
    import torch

    head, source = load_aesthetic_head(ModelSettings(profile="tiny", device="cpu"), head_path=HEAD_FILE)
    assert source == str(HEAD_FILE)  # a forced file is real weights whatever the profile
    with torch.inference_mode():
        raw = head(_unit_vectors()).reshape(-1).numpy()
    np.testing.assert_allclose(raw, reference["raw_outputs"], rtol=0, atol=1e-4)
