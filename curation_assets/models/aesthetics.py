"""LAION improved aesthetic predictor v2 on CLIP ViT-L/14 image embeddings.

score = MLP(L2-normalized open_clip ViT-L-14/'openai' image embedding) / 10, where the MLP is
`sac+logos+ava1-l14-linearMSE.pth` from github.com/christophschuhmann/improved-aesthetic-predictor
(a linear stack, no activations; output about 1-10). Same definition as data-juicer's
video_aesthetics_filter, so its thresholds transfer.

Weights (profile `real`, never downloaded at run time):
- backbone: see clip.py (`$CURATION_MODEL_DIR/open_clip/ViT-L-14/openai/` or the Hugging Face
  cache of `timm/vit_large_patch14_clip_224.openai`);
- head: `$CURATION_MODEL_DIR/aesthetics/sac+logos+ava1-l14-linearMSE.pth`, else the Hugging
  Face cache of `camenduru/improved-aesthetic-predictor` (same file name).
Profile `tiny`: the tiny CLIP with embed_dim 768 and the same MLP class with seeded random
weights (its last bias set to 5, so tiny scores sit near 0.5 instead of 0; still noise).

torch / open_clip are imported inside functions only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .clip import ClipEncoder, hf_cached_file, load_clip
from .registry import MODEL_DIR_ENV, ModelSettings, cached_model, hf_hub_cache_dir, missing_weights

AESTHETIC_HEAD = "sac+logos+ava1-l14-linearMSE"
AESTHETIC_HEAD_FILE = f"{AESTHETIC_HEAD}.pth"
AESTHETIC_BACKBONE_MODEL = "ViT-L-14"
AESTHETIC_BACKBONE_PRETRAINED = "openai"
AESTHETIC_EMBED_DIM = 768
AESTHETIC_HEAD_URL = (
    "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/sac%2Blogos%2Bava1-l14-linearMSE.pth"
)
#: A Hugging Face repo hosting the same file under the same name (read from the local cache only).
AESTHETIC_HEAD_HF_REPO = "camenduru/improved-aesthetic-predictor"
#: Keys of the real state dict (strict load).
AESTHETIC_HEAD_KEYS = tuple(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))

TINY_HEAD_SEED = 0
TINY_HEAD_BIAS = 5.0  # tiny raw outputs ~5 -> scores ~0.5

_MLP_CLASS: Any = None
_MLP_LOCK = threading.Lock()


def _mlp_class():
    """The predictor's MLP (defined lazily so importing this module does not import torch)."""
    global _MLP_CLASS
    with _MLP_LOCK:
        if _MLP_CLASS is None:
            from torch import nn

            class AestheticMLP(nn.Module):
                """improved-aesthetic-predictor's MLP: keys layers.{0,2,4,6,7}.{weight,bias}."""

                def __init__(self, input_size: int = AESTHETIC_EMBED_DIM):
                    super().__init__()
                    self.input_size = input_size
                    self.layers = nn.Sequential(
                        nn.Linear(input_size, 1024),
                        nn.Dropout(0.2),
                        nn.Linear(1024, 128),
                        nn.Dropout(0.2),
                        nn.Linear(128, 64),
                        nn.Dropout(0.1),
                        nn.Linear(64, 16),
                        nn.Linear(16, 1),
                    )

                def forward(self, x):
                    return self.layers(x)

            _MLP_CLASS = AestheticMLP
    return _MLP_CLASS


def build_aesthetic_mlp(input_size: int = AESTHETIC_EMBED_DIM):
    """A fresh (randomly initialized) aesthetic MLP; load real weights with `load_aesthetic_head`."""
    return _mlp_class()(input_size)


def aesthetic_head_path(model_dir: Path | str) -> Path:
    """`<model_dir>/aesthetics/sac+logos+ava1-l14-linearMSE.pth`."""
    return Path(model_dir) / "aesthetics" / AESTHETIC_HEAD_FILE


def _head_state_dict(path: str | Path) -> dict:
    """Read the head checkpoint: a plain state dict (as published), a {'state_dict': ...}
    wrapper (Lightning), `module.`-prefixed keys, or a bare nn.Sequential ('0.weight')."""
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise TypeError(f"expected a state dict, got {type(obj).__name__}")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    if state and all(k.split(".", 1)[0].isdigit() for k in state):
        state = {f"layers.{k}": v for k, v in state.items()}
    return state


def locate_aesthetic_head(settings: ModelSettings) -> tuple[str | None, list[str]]:
    """(head file or None, the places looked in) for the real profile."""
    looked_in: list[str] = []
    if settings.model_dir is not None:
        path = aesthetic_head_path(settings.model_dir)
        looked_in.append(str(path))
        if path.is_file():
            return str(path), looked_in
    else:
        looked_in.append(f"${MODEL_DIR_ENV}/aesthetics/{AESTHETIC_HEAD_FILE} (${MODEL_DIR_ENV} not set)")
    cache_dir = hf_hub_cache_dir()
    looked_in.append(
        f"Hugging Face cache {cache_dir / ('models--' + AESTHETIC_HEAD_HF_REPO.replace('/', '--'))} ({AESTHETIC_HEAD_FILE})"
    )
    found = hf_cached_file(AESTHETIC_HEAD_HF_REPO, AESTHETIC_HEAD_FILE, cache_dir)
    return (found, looked_in) if found else (None, looked_in)


def _missing_head_error(looked_in: list[str]):
    how = "\n".join(
        [
            f"Put the head file at ${MODEL_DIR_ENV}/aesthetics/{AESTHETIC_HEAD_FILE} and set {MODEL_DIR_ENV}.",
            "On a machine with internet:",
            f"  mkdir -p \"${MODEL_DIR_ENV}/aesthetics\" && curl -L -o \"${MODEL_DIR_ENV}/aesthetics/{AESTHETIC_HEAD_FILE}\" \\",
            f"    '{AESTHETIC_HEAD_URL}'",
            f"(or: hf download {AESTHETIC_HEAD_HF_REPO} '{AESTHETIC_HEAD_FILE}' --local-dir \"${MODEL_DIR_ENV}/aesthetics\").",
            f"The CLIP backbone ({AESTHETIC_BACKBONE_MODEL}/{AESTHETIC_BACKBONE_PRETRAINED}) is needed as well: "
            f"${MODEL_DIR_ENV}/open_clip/{AESTHETIC_BACKBONE_MODEL}/{AESTHETIC_BACKBONE_PRETRAINED}/open_clip_model.safetensors.",
        ]
    )
    return missing_weights(f"aesthetic predictor head {AESTHETIC_HEAD_FILE!r}", looked_in, how)


def load_aesthetic_head(
    settings: ModelSettings | None = None,
    head_path: str | Path | None = None,
    *,
    input_size: int = AESTHETIC_EMBED_DIM,
    device: str | None = None,
):
    """(MLP in eval mode, source) where source is the file loaded or None for tiny random weights.

    `head_path` forces a file (real weights whatever the profile); otherwise the profile decides:
    `real` looks the file up (MissingWeightsError if absent), `tiny` builds seeded random weights.
    """
    import torch

    settings = settings or ModelSettings()
    device = device or settings.resolved_device()
    if head_path is None and settings.profile == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_HEAD_SEED)
            head = build_aesthetic_mlp(input_size)
        with torch.no_grad():
            head.layers[7].bias.fill_(TINY_HEAD_BIAS)
        source = None
    else:
        if head_path is not None:
            path, looked_in = (str(head_path), [str(head_path)])
            if not os.path.isfile(path):
                raise _missing_head_error(looked_in)
        elif settings.profile == "real":
            path, looked_in = locate_aesthetic_head(settings)
            if path is None:
                raise _missing_head_error(looked_in)
        else:
            raise ValueError(f"unknown model profile {settings.profile!r}")
        head = build_aesthetic_mlp(input_size)
        try:
            head.load_state_dict(_head_state_dict(path), strict=True)
        except Exception as exc:
            raise missing_weights(
                f"aesthetic predictor head {AESTHETIC_HEAD_FILE!r}",
                [path],
                f"The file exists but is not the {AESTHETIC_HEAD} state dict "
                f"(keys {', '.join(AESTHETIC_HEAD_KEYS)}): {type(exc).__name__}: {exc}. "
                f"Download it again from {AESTHETIC_HEAD_URL}",
            ) from exc
        source = path
    head = head.to(device=device, dtype=torch.float32).eval()
    head.requires_grad_(False)
    return head, source


class AestheticScorer:
    """CLIP image embeddings (normalized) -> LAION aesthetic MLP -> /10."""

    def __init__(self, clip: ClipEncoder, head: Any, *, profile: str, model_id: str, head_path: str | None = None):
        self.clip = clip
        self.head = head
        self.profile = profile
        self.model_id = model_id
        self.head_path = head_path
        self.batch_size = clip.batch_size
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AestheticScorer({self.model_id!r}, profile={self.profile!r})"

    def score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 768) image embeddings (normalized here again) -> (N,) scores = head / 10."""
        import torch

        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            return np.zeros((0,), dtype=np.float32)
        device = next(self.head.parameters()).device
        out: list[np.ndarray] = []
        for start in range(0, emb.shape[0], self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(emb[start : start + self.batch_size])).to(device)
            with self._lock, torch.inference_mode():
                x = torch.nn.functional.normalize(x, dim=-1)
                raw = self.head(x).reshape(-1)
            out.append(raw.float().cpu().numpy())
        return (np.concatenate(out) / 10.0).astype(np.float32)

    def score(self, images: Sequence[np.ndarray], preprocess: str | None = None) -> np.ndarray:
        """RGB uint8 HxWx3 frames -> (N,) aesthetic scores (about 0.1-1.0 with real weights).

        preprocess: as ClipEncoder.encode_images ('auto': batched tensor ops on the device).
        """
        images = list(images)
        if not images:
            return np.zeros((0,), dtype=np.float32)
        return self.score_embeddings(self.clip.encode_images(images, preprocess))


def load_aesthetic_scorer(
    settings: ModelSettings | None = None,
    *,
    backbone: ClipEncoder | None = None,
    head_path: str | Path | None = None,
) -> AestheticScorer:
    """The aesthetic scorer for `settings`, loaded once per process.

    `backbone` (a ClipEncoder with 768-d embeddings) and `head_path` override the two halves
    separately, e.g. a real head file on a tiny backbone in tests. The scorer's profile is
    'tiny' whenever either half is tiny.
    """
    settings = settings or ModelSettings()
    # Load the backbone outside the scorer's cache factory (cached_model's lock is not re-entrant).
    clip = backbone or load_clip(AESTHETIC_BACKBONE_MODEL, AESTHETIC_BACKBONE_PRETRAINED, settings)
    if clip.embed_dim != AESTHETIC_EMBED_DIM:
        raise ValueError(
            f"the aesthetic head needs {AESTHETIC_EMBED_DIM}-d CLIP embeddings; {clip.model_id} gives {clip.embed_dim}"
        )
    head_key = str(Path(head_path).resolve()) if head_path is not None else None
    key = ("aesthetics", AESTHETIC_HEAD, clip.model_id, id(clip), head_key, *settings.cache_key())

    def factory() -> AestheticScorer:
        head, source = load_aesthetic_head(settings, head_path, device=clip.device)
        head_tiny = source is None
        profile = "tiny" if (clip.profile == "tiny" or head_tiny) else "real"
        head_id = f"tiny-random(seed={TINY_HEAD_SEED}):{AESTHETIC_HEAD}" if head_tiny else AESTHETIC_HEAD
        return AestheticScorer(clip, head, profile=profile, model_id=f"{clip.model_id}+{head_id}", head_path=source)

    return cached_model(key, factory)
