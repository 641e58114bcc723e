"""CLIP image/text encoders (open_clip), loaded once per process, fully offline.

Profiles (see registry.py):
- `real`: the public open_clip weights, e.g. ViT-B-32 / 'openai' (the same network as
  Hugging Face `openai/clip-vit-base-patch32`). Weights are looked up, in order, in
    1. `$CURATION_MODEL_DIR/open_clip/<model_name>/<pretrained>/` (open_clip_model.safetensors,
       open_clip_pytorch_model.bin, or any *.safetensors / *.bin / *.pt / *.pth file there);
    2. the Hugging Face hub cache, where open_clip's own download of a pretrained tag lands
       (for 'openai' ViT-B-32: repo `timm/vit_base_patch32_clip_224.openai`, file
       `open_clip_model.safetensors`, else `open_clip_pytorch_model.bin`).
  The cache is read straight from disk (no hub call at all), so nothing ever waits on the
  network; when nothing is found, MissingWeightsError says what is missing and how to
  provide it.
- `tiny`: a 2-layer, width-64 CLIP of the same open_clip class, built from a registered
  custom config with seeded random weights (identical across runs and processes), the
  same 224px / CLIP mean-std preprocessing and the real BPE tokenizer (shipped inside
  open_clip). Its scores are noise.

torch / open_clip are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import logging

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .registry import MODEL_DIR_ENV, ModelSettings, cached_model, hf_hub_cache_dir, missing_weights

DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "openai"

#: Seed of the tiny profile's random weights (recorded in its model_id).
TINY_SEED = 0
TINY_WIDTH = 64
TINY_LAYERS = 2
TINY_TEXT_HEADS = 2
TINY_DEFAULT_EMBED_DIM = 512

#: File names open_clip itself uses, preferred in this order inside a weights folder.
PREFERRED_WEIGHT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

# open_clip.pretrained: HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME (tried in this order).
_HF_DEFAULT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# preprocess keys a pretrained tag may set (open_clip merges them for tags, not for files);
# passed on as create_model_and_transforms(image_mean=..., image_std=..., ...).
_TAG_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")

_REGISTER_LOCK = threading.Lock()

#: How frames become the model's input: 'auto' = 'tensor' where open_clip's transform has a
#: tensor equivalent (image_tensors.py), else 'pil' (open_clip's own transform).
PREPROCESS_MODES = ("auto", "tensor", "pil")


# --------------------------------------------------------------------------- plain math


def frame_text_similarity(image_embeddings: np.ndarray, text_embedding: np.ndarray) -> np.ndarray:
    """Cosine similarity of each frame embedding (F, D) with one text embedding (D,) -> (F,).

    Both sides are (re)normalized, so unnormalized inputs give true cosines; a zero vector
    gives nan (the cosine is undefined).
    """
    images = np.asarray(image_embeddings, dtype=np.float64)
    text = np.asarray(text_embedding, dtype=np.float64).reshape(-1)
    if images.ndim == 1:
        images = images.reshape(1, -1) if images.size else images.reshape(0, text.shape[0])
    if images.shape[0] == 0:
        return np.zeros((0,), dtype=np.float32)
    if images.shape[1] != text.shape[0]:
        raise ValueError(f"embedding sizes differ: images {images.shape}, text {text.shape}")
    image_norms = np.linalg.norm(images, axis=1)
    text_norm = np.linalg.norm(text)
    with np.errstate(divide="ignore", invalid="ignore"):
        sims = (images @ text) / (image_norms * text_norm)
    sims[(image_norms == 0) | (text_norm == 0)] = np.nan
    return sims.astype(np.float32)


# one reducer for every image score; re-exported here for callers of the CLIP module
from curation_assets.scorers.reduce import REDUCE_MODES, reduce_scores  # noqa: E402,F401


# --------------------------------------------------------------------------- configs


def tiny_clip_config(embed_dim: int = TINY_DEFAULT_EMBED_DIM) -> dict:
    """open_clip model config of the tiny profile (same CLIP class and tokenizer as ViT-B-32)."""
    return {
        "embed_dim": int(embed_dim),
        "quick_gelu": True,  # as the OpenAI CLIPs
        "vision_cfg": {
            "image_size": 224,
            "layers": TINY_LAYERS,
            "width": TINY_WIDTH,
            "head_width": TINY_WIDTH // 2,  # 2 heads
            "patch_size": 32,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": TINY_WIDTH,
            "heads": TINY_TEXT_HEADS,
            "layers": TINY_LAYERS,
        },
    }


def tiny_model_name(embed_dim: int) -> str:
    return f"curation-tiny-clip-e{int(embed_dim)}"


def register_clip_config(name: str, config: dict) -> None:
    """Register a custom model config in open_clip's config registry under `name`.

    Uses open_clip's public `add_model_config(path)` with a JSON file written to a temporary
    folder (the registry keeps the parsed config after the file is gone). Idempotent.
    """
    if not name or "/" in name or os.sep in name:
        raise ValueError(f"invalid open_clip model config name {name!r}")
    if not all(k in config for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ValueError("an open_clip model config needs embed_dim, vision_cfg and text_cfg")
    import open_clip

    with _REGISTER_LOCK:
        if open_clip.get_model_config(name) == config:
            return
        with tempfile.TemporaryDirectory(prefix="open_clip_cfg_") as tmp:
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(config))
            open_clip.add_model_config(path)
        if open_clip.get_model_config(name) != config:
            raise RuntimeError(f"could not register open_clip model config {name!r}")


def model_embed_dim(model_name: str, default: int = TINY_DEFAULT_EMBED_DIM) -> int:
    """The embedding size of an open_clip model name (its config), or `default` if unknown."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    return int(cfg["embed_dim"]) if cfg and "embed_dim" in cfg else default


# --------------------------------------------------------------------------- weight lookup


def clip_weights_dir(model_dir: Path | str, model_name: str, pretrained: str) -> Path:
    """`<model_dir>/open_clip/<model_name>/<pretrained>/`."""
    return Path(model_dir) / "open_clip" / model_name.replace("/", "-") / pretrained


def find_weight_file(folder: Path) -> Path | None:
    """The weights file open_clip should load from `folder`, or None."""
    if not folder.is_dir():
        return None
    for name in PREFERRED_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    candidates.sort(key=lambda p: p.suffix != ".safetensors")  # stable: safetensors first
    return candidates[0] if candidates else None


#: open_clip's `hf_hub` entries for the default tags (a test compares them with open_clip's registry).
KNOWN_HF_HUB = {
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai/",
    ("ViT-L-14", "openai"): "timm/vit_large_patch14_clip_224.openai/",
}


def pretrained_tag_config(model_name: str, pretrained: str) -> dict:
    """open_clip's registry entry for a pretrained tag ({} for unknown tags or files)."""
    import open_clip

    return dict(open_clip.get_pretrained_cfg(model_name.replace("/", "-"), pretrained) or {})


def hf_hub_source(model_name: str, pretrained: str) -> tuple[str, tuple[str, ...]] | None:
    """(repo_id, candidate filenames) where open_clip downloads a pretrained tag from, or None.

    Mirrors open_clip.pretrained.download_pretrained: the tag's `hf_hub` entry is
    'org/repo/' (default files: open_clip_model.safetensors, then open_clip_pytorch_model.bin)
    or 'org/repo/filename' (a .bin/.pth also tried as .safetensors first).
    """
    # The two tags the pipeline uses by default, as in open_clip's registry: a weights check
    # (pre-flight, `curation-assets models`) then needs no torch/open_clip import (~4 s).
    hub = KNOWN_HF_HUB.get((model_name, pretrained))
    if hub is None:
        hub = pretrained_tag_config(model_name, pretrained).get("hf_hub") or ""
    if not hub:
        return None
    if hub.endswith("/"):
        return hub.rstrip("/"), _HF_DEFAULT_FILES
    repo_id, filename = os.path.split(hub)
    files: list[str] = []
    if filename.endswith((".bin", ".pth")):
        files.append(filename[:-4] + ".safetensors")
    files.append(filename)
    return repo_id, tuple(files)


def hf_cached_file(repo_id: str, filename: str, cache_dir: Path) -> str | None:
    """Path of a file in the local hub cache (no network), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir))
    except Exception:
        return None
    return found if isinstance(found, str) and os.path.isfile(found) else None


def locate_clip_weights(model_name: str, pretrained: str, settings: ModelSettings) -> tuple[str | None, list[str]]:
    """(weights file or None, the places looked in) for the real profile."""
    looked_in: list[str] = []
    if os.path.isfile(pretrained):  # an explicit file path works as in open_clip
        return pretrained, [pretrained]
    if settings.model_dir is not None:
        folder = clip_weights_dir(settings.model_dir, model_name, pretrained)
        looked_in.append(f"{folder}/ (open_clip_model.safetensors, open_clip_pytorch_model.bin, *.safetensors|*.bin|*.pt|*.pth)")
        found = find_weight_file(folder)
        if found is not None:
            return str(found), looked_in
    else:
        looked_in.append(f"${MODEL_DIR_ENV} (not set)")
    source = hf_hub_source(model_name, pretrained)
    if source is not None:
        repo_id, files = source
        cache_dir = hf_hub_cache_dir()
        repo_folder = cache_dir / f"models--{repo_id.replace('/', '--')}"
        looked_in.append(f"Hugging Face cache {repo_folder} ({' or '.join(files)})")
        for filename in files:
            found_file = hf_cached_file(repo_id, filename, cache_dir)
            if found_file:
                return found_file, looked_in
    return None, looked_in


def _missing_clip_error(model_name: str, pretrained: str, looked_in: list[str]):
    target = f"${MODEL_DIR_ENV}/open_clip/{model_name}/{pretrained}/"
    lines = [
        "Provide them in one of these ways (no network is used at run time):",
        f"  1. Put the weights file in {target} and set {MODEL_DIR_ENV}, i.e.",
        f"       ${MODEL_DIR_ENV}/open_clip/{model_name}/{pretrained}/open_clip_model.safetensors",
        "     (open_clip_pytorch_model.bin or any one *.safetensors / *.bin / *.pt / *.pth file also works).",
    ]
    source = hf_hub_source(model_name, pretrained)
    if source is not None:
        repo_id, files = source
        lines += [
            f"     On a machine with internet: hf download {repo_id} {files[0]} --local-dir {target}",
            f"  2. Or fill the Hugging Face cache: open_clip fetches pretrained='{pretrained}' for {model_name} from the hub",
            f"     repo {repo_id}, file {files[0]}" + (f" (else {', '.join(files[1:])})" if len(files) > 1 else "")
            + ". On a machine with internet run",
            f"       python -c \"import open_clip; open_clip.create_model_and_transforms('{model_name}', pretrained='{pretrained}')\"",
            f"     then copy its hub cache folder models--{repo_id.replace('/', '--')} into this machine's HF_HOME/hub",
            "     (default ~/.cache/huggingface/hub).",
        ]
    return missing_weights(f"open_clip model {model_name!r} (pretrained={pretrained!r})", looked_in, "\n".join(lines))


# --------------------------------------------------------------------------- the encoder


def _precision_for(settings: ModelSettings, device: str) -> str:
    """open_clip precision string: half precision only on CUDA, else fp32."""
    import torch

    dtype = settings.torch_dtype()
    if not device.startswith("cuda"):
        return "fp32"
    if dtype == torch.float16:
        return "fp16"
    if dtype == torch.bfloat16:
        return "bf16"
    return "fp32"


def _to_pil(frame: Any):
    from PIL import Image

    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"expected an RGB frame HxWx3, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr)).convert("RGB")


class ClipEncoder:
    """An open_clip model with its eval preprocess and tokenizer, on one device."""

    def __init__(
        self,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        *,
        device: str,
        model_name: str,
        pretrained: str,
        profile: str,
        embed_dim: int,
        batch_size: int = 32,
        weights_path: str | None = None,
        precision: str = "fp32",
        preprocess_mode: str = "auto",
    ) -> None:
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.model_name = model_name
        self.pretrained = pretrained
        self.profile = profile
        self.embed_dim = int(embed_dim)
        self.batch_size = max(1, int(batch_size))
        self.weights_path = weights_path
        self.precision = precision
        from .image_tensors import from_open_clip

        # the same steps as `preprocess`, as one batch of tensors on the model's device
        self.tensor_preprocess = from_open_clip(preprocess)
        if preprocess_mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess_mode must be one of {PREPROCESS_MODES}, got {preprocess_mode!r}")
        self.preprocess_mode = preprocess_mode
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Names the weights: 'open_clip:ViT-B-32/openai', or a tiny-random id for the tiny profile."""
        base = f"open_clip:{self.model_name}/{self.pretrained}"
        if self.profile == "tiny":
            return f"tiny-random(seed={TINY_SEED}):{base}"
        return base

    @property
    def context_length(self) -> int:
        return int(getattr(self.tokenizer, "context_length", 77) or 77)

    def __repr__(self) -> str:
        return f"ClipEncoder({self.model_id!r}, profile={self.profile!r}, device={self.device!r})"

    def _input_dtype(self):
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)

    def resolved_preprocess(self, mode: str | None = None) -> str:
        """'tensor' or 'pil': what `mode` (default: this encoder's preprocess_mode) runs here."""
        mode = mode or self.preprocess_mode
        if mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess_mode must be one of {PREPROCESS_MODES}, got {mode!r}")
        if mode == "auto":
            return "tensor" if self.tensor_preprocess is not None else "pil"
        if mode == "tensor" and self.tensor_preprocess is None:
            raise ValueError(f"{self.model_id}: its preprocess has no tensor equivalent ({self.preprocess})")
        return mode

    def preprocess_images(self, images: Sequence[Any], mode: str | None = None):
        """Frames -> the model's input batch (N, 3, 224, 224) on its device, in its dtype.

        'tensor': batched torch ops on the device (see image_tensors.py); 'pil': open_clip's
        own per-image PIL transform on this thread (the reference).
        """
        import torch

        dtype = self._input_dtype()
        if self.resolved_preprocess(mode) == "tensor":
            return self.tensor_preprocess(images, device=self.device, dtype=dtype)
        batch = torch.stack([self.preprocess(_to_pil(f)) for f in images])
        return batch.to(self.device, dtype=dtype)

    def encode_pixels(self, pixels) -> np.ndarray:
        """A preprocessed batch (from preprocess_images) -> float32 (N, D), L2-normalized."""
        import torch

        with self._lock, torch.inference_mode():
            feats = self.model.encode_image(pixels)
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy().astype(np.float32, copy=False)

    def encode_images(self, images: Sequence[np.ndarray], preprocess: str | None = None) -> np.ndarray:
        """RGB uint8 HxWx3 frames -> float32 (N, D), L2-normalized.

        preprocess: 'auto' (default: tensor ops on the model's device when the transform allows),
        'tensor' or 'pil' (open_clip's per-image PIL transform).
        """
        images = list(images)
        if not images:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            pixels = self.preprocess_images(images[start : start + self.batch_size], preprocess)
            out.append(self.encode_pixels(pixels))
        return np.concatenate(out, axis=0)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> float32 (N, D), L2-normalized; longer texts are truncated to the context (77 tokens)."""
        import torch

        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[start : start + self.batch_size])
            with self._lock, torch.inference_mode():
                feats = self.model.encode_text(tokens.to(self.device))
                feats = torch.nn.functional.normalize(feats.float(), dim=-1)
            out.append(feats.cpu().numpy().astype(np.float32, copy=False))
        return np.concatenate(out, axis=0)


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def _build_encoder(model_name: str, pretrained: str, settings: ModelSettings) -> ClipEncoder:
    import torch
    import open_clip

    device = settings.resolved_device()
    precision = _precision_for(settings, device)

    if settings.profile == "tiny":
        embed_dim = model_embed_dim(model_name)
        arch = tiny_model_name(embed_dim)
        register_clip_config(arch, tiny_clip_config(embed_dim))
        # Seed a forked RNG: identical weights in every process, global RNG left untouched.
        # Random weights are the point here: silence open_clip's "initialized randomly" warning,
        # the profile is reported in rows, metadata and the funnel instead.
        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(TINY_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=None, precision=precision, device=device
            )
        tokenizer = open_clip.get_tokenizer(arch)
        weights_path = None
    elif settings.profile == "real":
        weights_path, looked_in = locate_clip_weights(model_name, pretrained, settings)
        if weights_path is None:
            raise _missing_clip_error(model_name, pretrained, looked_in)
        tag_cfg = pretrained_tag_config(model_name, pretrained)
        # open_clip >= 3 no longer switches to QuickGELU for the 'openai' tag by itself (it only
        # warns), and never does for a file path: follow the tag's own setting explicitly.
        force_quick_gelu = bool(tag_cfg.get("quick_gelu", False))
        preprocess_kwargs = {f"image_{k}": tag_cfg[k] for k in _TAG_PREPROCESS_KEYS if k in tag_cfg}
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=weights_path,
                precision=precision,
                device=device,
                force_quick_gelu=force_quick_gelu,
                **preprocess_kwargs,
            )
        except Exception as exc:  # a present but unusable file: say which
            raise missing_weights(
                f"open_clip model {model_name!r} (pretrained={pretrained!r})",
                [weights_path],
                f"The file exists but could not be loaded ({type(exc).__name__}: {exc}). "
                f"Replace it with the open_clip checkpoint for {model_name}/{pretrained}.",
            ) from exc
        tokenizer = open_clip.get_tokenizer(model_name)
        embed_dim = model_embed_dim(model_name, default=0) or int(model.text_projection.shape[-1])
    else:
        raise ValueError(f"unknown model profile {settings.profile!r}")

    model.eval()
    model.requires_grad_(False)
    return ClipEncoder(
        model,
        preprocess,
        tokenizer,
        device=device,
        model_name=model_name,
        pretrained=pretrained,
        profile=settings.profile,
        embed_dim=embed_dim,
        batch_size=settings.batch_size,
        weights_path=weights_path,
        precision=precision,
    )


def load_clip(
    model_name: str = DEFAULT_CLIP_MODEL,
    pretrained: str = DEFAULT_CLIP_PRETRAINED,
    settings: ModelSettings | None = None,
) -> ClipEncoder:
    """The CLIP encoder for (model_name, pretrained) under `settings`, loaded once per process.

    In the tiny profile the embedding size follows `model_name`'s config (512 for ViT-B-32,
    768 for ViT-L-14; 512 for unknown names), so downstream shapes match the real model.
    """
    settings = settings or ModelSettings()
    key = ("open_clip", model_name, pretrained, settings.batch_size, *settings.cache_key())
    return cached_model(key, lambda: _build_encoder(model_name, pretrained, settings))
