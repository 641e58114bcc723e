"""Loading the captioner: real weights offline (model dir, Hugging Face cache, a local path) or the tiny profile."""

from __future__ import annotations

from pathlib import Path

from curation_assets.models.registry import (
    MODEL_DIR_ENV, ModelSettings, cached_model, hf_hub_cache_dir, missing_weights,
)
from curation_assets.models.videoblip.architecture import ensure_image_token, model_classes
from curation_assets.models.videoblip.captioner import (
    DEFAULT_CAPTIONER, DEFAULT_NUM_FRAMES, VideoCaptioner, blip_image_processor, caption_batch_size,
)
from curation_assets.models.videoblip.tiny import load_tiny

# Below this many parameters a model captions faster on one CPU thread (test-sized checkpoints).
SMALL_MODEL_PARAMS = 5_000_000


def load_captioner(model_id: str = DEFAULT_CAPTIONER, settings: ModelSettings | None = None, *,
                   num_frames: int = DEFAULT_NUM_FRAMES) -> VideoCaptioner:
    """The captioner for `model_id`, loaded once per process (registry.cached_model).

    real: offline only, from `<settings.model_dir>/hf/<model_id>/` (a save_pretrained or
      `hf download --local-dir` directory), else the Hugging Face cache (local_files_only), else
      `model_id` itself when it is a local directory. Missing -> MissingWeightsError at once.
    tiny: the same classes with a tiny random-weight config and an offline-built tokenizer.
    """
    settings = settings or ModelSettings()
    key = ("videoblip", model_id, int(num_frames), settings.profile, settings.batch_size, *settings.cache_key())
    if settings.profile == "tiny":
        return cached_model(key, lambda: load_tiny(model_id, settings, num_frames))
    if settings.profile == "real":
        path = local_model_path(model_id, settings)  # outside the cache: fails fast, nothing cached
        return cached_model(key, lambda: load_real(model_id, path, settings, num_frames))
    raise ValueError(f"unknown model profile {settings.profile!r}")


def _how_to_provide(model_id: str) -> str:
    target = f"${MODEL_DIR_ENV}/hf/{model_id}"
    return (
        f"Provide the checkpoint as a directory {target}/ holding config.json, the weights "
        f"(*.safetensors or pytorch_model*.bin), the tokenizer files and preprocessor_config.json "
        f"(with {MODEL_DIR_ENV} set for the run). On a machine with internet:\n"
        f"  hf download {model_id} --local-dir {target}\n"
        f"(huggingface_hub < 1.0: huggingface-cli download {model_id} --local-dir {target}), then copy that "
        f"directory here. Or fill the Hugging Face cache with `hf download {model_id}` and copy the cache "
        f"(models--{model_id.replace('/', '--')}) into $HF_HOME/hub."
    )


def local_model_path(model_id: str, settings: ModelSettings) -> Path:
    """Where the real checkpoint is, without touching the network; MissingWeightsError if nowhere."""
    looked_in: list[str] = []
    if settings.model_dir is not None:
        candidate = Path(settings.model_dir).expanduser() / "hf" / model_id
        if (candidate / "config.json").is_file():
            return candidate
        looked_in.append(f"{candidate}/ ({MODEL_DIR_ENV}/hf/<model id>/: "
                         + ("no config.json)" if candidate.exists() else "not there)"))
    else:
        looked_in.append(f"${MODEL_DIR_ENV}/hf/{model_id}/ ({MODEL_DIR_ENV} is not set)")

    cache_dir = hf_hub_cache_dir()
    repo_cache = cache_dir / f"models--{model_id.replace('/', '--')}"
    if repo_cache.is_dir():
        from huggingface_hub import snapshot_download

        try:
            snapshot = Path(snapshot_download(model_id, cache_dir=str(cache_dir), local_files_only=True))
            if (snapshot / "config.json").is_file():
                return snapshot
        except Exception:  # noqa: BLE001 - any cache miss means "not there"
            pass
    looked_in.append(f"{repo_cache}/ (Hugging Face cache, offline)")

    direct = Path(model_id).expanduser()
    if (direct / "config.json").is_file():
        return direct
    raise missing_weights(f"video captioner {model_id!r}", looked_in, _how_to_provide(model_id))


def load_real(model_id: str, path: Path, settings: ModelSettings, num_frames: int) -> VideoCaptioner:
    from transformers import AutoTokenizer, Blip2Config

    _, model_class = model_classes()
    device = settings.resolved_device()
    try:
        config = Blip2Config.from_pretrained(str(path), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model, info = model_class.from_pretrained(str(path), config=config, dtype=settings.torch_dtype(),
                                                  local_files_only=True, output_loading_info=True)
    except OSError as exc:
        raise missing_weights(f"video captioner {model_id!r}", [f"{path}/ ({exc})"], _how_to_provide(model_id)) from exc
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("lm_head.weight")]
    if missing:
        raise ValueError(f"{path}: not a BLIP-2/VideoBLIP checkpoint, {len(missing)} weights missing "
                         f"(e.g. {sorted(missing)[:5]})")
    ensure_image_token(model, tokenizer)
    model.to(device).eval()
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    return VideoCaptioner(model, tokenizer, blip_image_processor(path), model_id=model_id, profile="real",
                          device=device, batch_size=caption_batch_size(device), num_frames=num_frames, source=str(path),
                          cpu_threads=1 if small else None)
