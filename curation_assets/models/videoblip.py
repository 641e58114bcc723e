"""VideoBLIP video captioner (the `captions` asset's generator) on transformers' BLIP-2 classes.

VideoBLIP (github.com/yukw777/VideoBLIP, `video_blip/model.py`; checkpoint
`kpyu/video-blip-opt-2.7b-ego4d`) is BLIP-2 with one change: the vision encoder runs over every
frame. `pixel_values` shaped (batch, channels, time, height, width) are flattened to
(batch*time, C, H, W), encoded frame by frame, and the per-frame outputs are concatenated over
time into (batch, time*seq_len, hidden); the Q-Former cross-attends to all frames at once, then
the language projection and OPT run exactly as in BLIP-2. The module names (`vision_model`,
`query_tokens`, `qformer`, `language_projection`, `language_model`) are BLIP-2's, so the
published checkpoint loads into these classes unchanged.

transformers 5.x BLIP-2 `generate()` places the projected query outputs at the positions of
`config.image_token_index` in `input_ids`. Checkpoints saved before that existed (kpyu's among
them) have no image token in their config or tokenizer: on load one is added to the tokenizer
(`<image>`, special), the language-model embeddings are grown if the vocabulary no longer fits
(never shrunk: OPT's 50272 rows already cover the 50266 tokens), and the config gets the id.

Frames: each video is resampled to `num_frames` (8, the number VideoBLIP was fine-tuned with)
by pytorchvideo's `UniformTemporalSubsample`, the transform VideoBLIP's training used:
indices = floor(linspace(0, T-1, num_frames)). Longer videos get a uniform pick including the
first and last frame (20 -> [0, 2, 5, 8, 10, 13, 16, 19]); shorter ones keep every frame in
temporal order, repeated to fill (3 -> [0, 0, 0, 0, 1, 1, 1, 2]; 1 -> eight copies). Frames are
then preprocessed like BLIP-2 (BlipImageProcessor: bicubic resize to 224x224, rescale 1/255,
OpenAI-CLIP mean/std; a checkpoint's own preprocessor_config.json when it has one), as one batch
of tensors on the model's device (image_tensors.py; within one grey level of the processor's PIL
path, which `preprocess_mode = "pil"` still runs). Videos per generate() call follow the device
(`caption_batch_size`: 8 on CPU, up to 64 on a large GPU).

Decoding is deterministic: beam search (4 beams, VideoBLIP's demo default), no sampling, at most
30 new tokens, at least one; the `<image>` placeholder is never generated. Captions are decoded
without special tokens and stripped.

Importing this module does not import torch or transformers; the model classes are built on
first use by `_model_classes()` (also reachable as module attributes).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from curation_assets.models.registry import (
    MODEL_DIR_ENV, ModelSettings, cached_model, hf_hub_cache_dir, missing_weights,
)

DEFAULT_CAPTIONER = "kpyu/video-blip-opt-2.7b-ego4d"
DEFAULT_NUM_FRAMES = 8  # VideoBLIP was fine-tuned on Ego4D clips subsampled to 8 frames
DEFAULT_NUM_BEAMS = 4
DEFAULT_MAX_NEW_TOKENS = 30
IMAGE_TOKEN = "<image>"
CAPTION_BATCH_ENV = "CURATION_CAPTION_BATCH"
IMAGE_SIZE = 224
TINY_SEED = 0
# Below this many parameters a model captions faster on one CPU thread (test-sized checkpoints).
SMALL_MODEL_PARAMS = 5_000_000

__all__ = [
    "DEFAULT_CAPTIONER",
    "DEFAULT_NUM_FRAMES",
    "VideoCaptioner",
    "VideoBlipForConditionalGeneration",
    "VideoBlipVisionModel",
    "build_tiny_parts",
    "load_captioner",
    "local_model_path",
    "sample_frame_indices",
    "save_tiny_checkpoint",
]


# --------------------------------------------------------------------------------------------
# Model classes (created lazily so that importing this module stays free of torch)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _model_classes() -> tuple[type, type]:
    """(VideoBlipVisionModel, VideoBlipForConditionalGeneration), subclasses of transformers' BLIP-2."""
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, Blip2Config
    from transformers.modeling_outputs import BaseModelOutputWithPooling
    from transformers.models.blip_2.modeling_blip_2 import (
        Blip2ForConditionalGeneration,
        Blip2QFormerModel,
        Blip2VisionModel,
    )

    class VideoBlipVisionModel(Blip2VisionModel):
        """Blip2VisionModel over videos: frames are encoded separately, outputs joined over time.

        `pixel_values` (batch, channel, time, height, width) -> flattened to
        (batch*time, channel, height, width) -> BLIP-2 vision encoder -> restored as
          last_hidden_state (batch, time*seq_len, hidden)   [frame 0's tokens, frame 1's, ...]
          pooler_output     (batch, time, hidden)
          hidden_states     each (batch, time*seq_len, hidden)
          attentions        each (batch, time, heads, seq_len, seq_len)
        A 4-D (batch, channel, height, width) input is taken as a one-frame video, which is BLIP-2.
        """

        def forward(self, pixel_values: torch.Tensor | None = None, interpolate_pos_encoding: bool = False,
                    **kwargs: Any):
            if pixel_values is None:
                raise ValueError("You have to specify pixel_values")
            if pixel_values.dim() == 4:
                pixel_values = pixel_values.unsqueeze(2)
            if pixel_values.dim() != 5:
                raise ValueError(f"pixel_values must be (batch, channel, time, height, width), got "
                                 f"{tuple(pixel_values.shape)}")
            return_dict = kwargs.pop("return_dict", None)
            if return_dict is None:
                return_dict = self.config.use_return_dict
            batch, _, time, _, _ = pixel_values.size()

            # (batch, channel, time, H, W) -> (batch * time, channel, H, W)
            flat_pixel_values = pixel_values.permute(0, 2, 1, 3, 4).flatten(end_dim=1)
            vision_outputs = super().forward(
                pixel_values=flat_pixel_values,
                interpolate_pos_encoding=interpolate_pos_encoding,
                return_dict=True,
                **kwargs,
            )

            # (batch * time, seq_len, hidden) -> (batch, time * seq_len, hidden)
            seq_len = vision_outputs.last_hidden_state.size(1)
            last_hidden_state = vision_outputs.last_hidden_state.reshape(batch, time * seq_len, -1)
            pooler_output = vision_outputs.pooler_output.reshape(batch, time, -1)
            hidden_states = (
                tuple(hidden.reshape(batch, time * seq_len, -1) for hidden in vision_outputs.hidden_states)
                if vision_outputs.hidden_states is not None
                else None
            )
            attentions = (
                tuple(att.reshape(batch, time, -1, seq_len, seq_len) for att in vision_outputs.attentions)
                if vision_outputs.attentions is not None
                else None
            )
            if not return_dict:
                return tuple(v for v in (last_hidden_state, pooler_output, hidden_states, attentions)
                             if v is not None)
            return BaseModelOutputWithPooling(
                last_hidden_state=last_hidden_state,
                pooler_output=pooler_output,
                hidden_states=hidden_states,
                attentions=attentions,
            )

    class VideoBlipForConditionalGeneration(Blip2ForConditionalGeneration):
        """BLIP-2 whose vision model is `VideoBlipVisionModel`; identical module names/state-dict keys.

        As in VideoBLIP, Blip2ForConditionalGeneration.__init__ is bypassed (the grandparent's runs)
        so the vision tower is built once, as the video variant. The body mirrors transformers
        5.x's Blip2ForConditionalGeneration.__init__. `generate()` / `forward()` are BLIP-2's:
        they take pixel_values (batch, channel, time, height, width).
        """

        def __init__(self, config: Blip2Config) -> None:
            super(Blip2ForConditionalGeneration, self).__init__(config)

            self.vision_model = VideoBlipVisionModel._from_config(config.vision_config)

            self.query_tokens = nn.Parameter(
                torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size)
            )
            self.qformer = Blip2QFormerModel._from_config(config.qformer_config)

            self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
            if config.use_decoder_only_language_model:
                language_model = AutoModelForCausalLM.from_config(config.text_config)
            else:
                language_model = AutoModelForSeq2SeqLM.from_config(config.text_config)
            self.language_model = language_model

            self.post_init()

    for cls in (VideoBlipVisionModel, VideoBlipForConditionalGeneration):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    return VideoBlipVisionModel, VideoBlipForConditionalGeneration


def __getattr__(name: str):
    if name == "VideoBlipVisionModel":
        return _model_classes()[0]
    if name == "VideoBlipForConditionalGeneration":
        return _model_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def sample_frame_indices(num_available: int, num_frames: int) -> list[int]:
    """pytorchvideo's UniformTemporalSubsample (VideoBLIP's training transform): floor(linspace(0, T-1, n)).

    More frames than needed: a uniform pick that keeps the first and the last frame
    (20 -> 8: [0, 2, 5, 8, 10, 13, 16, 19]). Fewer: every frame kept, in order, repeated to fill
    (3 -> 8: [0, 0, 0, 0, 1, 1, 1, 2]). One frame: repeated n times.
    """
    if num_available < 1:
        raise ValueError("a video needs at least one frame")
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    positions = np.linspace(0.0, num_available - 1, num_frames)
    return np.clip(positions, 0, num_available - 1).astype(np.int64).tolist()


def _as_rgb_uint8(frame: Any, where: str) -> np.ndarray:
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"{where}: frames must be uint8 RGB arrays, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{where}: frames must be HxWx3 arrays, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------------------------
# The captioner
# --------------------------------------------------------------------------------------------


class VideoCaptioner:
    """Captions videos (lists of RGB uint8 HxWx3 frames) with a VideoBLIP / BLIP-2-style model.

    Build it with `load_captioner`. Attributes: model_id, profile ('real' | 'tiny'), num_frames,
    batch_size, device, generation (the default decoding settings).
    """

    def __init__(self, model, tokenizer, image_processor, *, model_id: str, profile: str, device: str,
                 batch_size: int = 8, num_frames: int = DEFAULT_NUM_FRAMES, source: str | None = None,
                 cpu_threads: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.model_id = model_id
        self.profile = profile
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.num_frames = int(num_frames)
        self.source = source  # where the weights came from (a directory), None for tiny
        from curation_assets.models.image_tensors import from_blip_processor

        # the processor's steps as one batch of tensors on the model's device ('pil' = the processor)
        self.tensor_preprocess = from_blip_processor(image_processor)
        self.preprocess_mode = "tensor" if self.tensor_preprocess is not None else "pil"
        # torch CPU threads while captioning (restored after); None leaves torch's setting alone.
        # The tiny profile uses 1: its 32-wide layers only lose to thread start-up and contention.
        self.cpu_threads = cpu_threads
        config = model.config
        self.image_token_id = int(config.image_token_index)
        self.num_query_tokens = int(config.num_query_tokens)
        self.is_encoder_decoder = not config.use_decoder_only_language_model
        text_config = config.text_config
        self.bos_token_id = text_config.bos_token_id if text_config.bos_token_id is not None else tokenizer.bos_token_id
        self.generation: dict[str, Any] = {
            "num_beams": DEFAULT_NUM_BEAMS,
            "do_sample": False,
            "max_new_tokens": DEFAULT_MAX_NEW_TOKENS,
            "min_new_tokens": 1,
        }

    def __repr__(self) -> str:
        return (f"VideoCaptioner(model_id={self.model_id!r}, profile={self.profile!r}, device={self.device!r}, "
                f"num_frames={self.num_frames})")

    @property
    def params(self) -> dict[str, Any]:
        """What determines the captions, for asset metadata / code versions."""
        return {"model_id": self.model_id, "profile": self.profile, "num_frames": self.num_frames,
                "frame_sampling": "uniform_temporal_subsample", **self.generation}

    # -- preprocessing ------------------------------------------------------------------------

    def _pixel_values(self, videos: Sequence[Sequence[np.ndarray]], offset: int):
        """(batch, 3, num_frames, 224, 224) float tensor on the model's device and dtype."""
        import torch

        flat: list[np.ndarray] = []
        for i, video in enumerate(videos):
            frames = list(video)
            if not frames:
                raise ValueError(f"video {offset + i}: no frames")
            for index in sample_frame_indices(len(frames), self.num_frames):
                flat.append(_as_rgb_uint8(frames[index], f"video {offset + i}, frame {index}"))
        dtype = self.model.vision_model.dtype
        if self.preprocess_mode == "tensor":
            pixel_values = self.tensor_preprocess(flat, device=self.device, dtype=dtype)
            _, channels, height, width = pixel_values.shape
            pixel_values = pixel_values.view(len(videos), self.num_frames, channels, height, width)
            return pixel_values.permute(0, 2, 1, 3, 4).contiguous()
        pixel_values = self.image_processor(images=flat, return_tensors="pt",
                                            input_data_format="channels_last")["pixel_values"]
        if not isinstance(pixel_values, torch.Tensor):
            pixel_values = torch.as_tensor(np.asarray(pixel_values))
        _, channels, height, width = pixel_values.shape
        pixel_values = pixel_values.view(len(videos), self.num_frames, channels, height, width)
        pixel_values = pixel_values.permute(0, 2, 1, 3, 4).contiguous()
        return pixel_values.to(self.device, dtype=dtype)

    def _prompt_ids(self, prompt: str | None) -> list[int]:
        """BLIP-2 layout: num_query_tokens image placeholders, then BOS + prompt (decoder-only LMs)."""
        image_ids = [self.image_token_id] * self.num_query_tokens
        text = (prompt or "").strip()
        if self.is_encoder_decoder:
            # T5-style: the tokenizer appends its EOS; there is no BOS.
            return image_ids + list(self.tokenizer(text, add_special_tokens=True).input_ids)
        ids = list(self.tokenizer(text, add_special_tokens=False).input_ids) if text else []
        bos = [self.bos_token_id] if self.bos_token_id is not None else []
        return image_ids + bos + ids

    # -- generation ---------------------------------------------------------------------------

    def caption(self, videos: list[list[np.ndarray]], prompt: str | None = None, *,
                max_new_tokens: int | None = None, num_beams: int | None = None,
                **generate_kwargs: Any) -> list[str]:
        """One caption per video, in order. Deterministic (beam search, no sampling) by default.

        videos: each a non-empty list of RGB uint8 HxWx3 frames; counts and sizes may differ.
        prompt: optional text the LM continues (e.g. "Question: What is the camera wearer doing?
            Answer:"); None captions from the frames alone, as BLIP-2 does.
        """
        if isinstance(videos, np.ndarray) and videos.ndim == 5:
            videos = list(videos)
        settings = dict(self.generation)
        if max_new_tokens is not None:
            settings["max_new_tokens"] = int(max_new_tokens)
        if num_beams is not None:
            settings["num_beams"] = int(num_beams)
        settings.update(generate_kwargs)
        suppress = [self.image_token_id]
        pad = self.tokenizer.pad_token_id
        if pad is not None and pad != self.tokenizer.eos_token_id and pad != self.bos_token_id:
            suppress.append(pad)
        settings.setdefault("suppress_tokens", suppress)
        pad_id = pad if pad is not None else self.tokenizer.eos_token_id
        if pad_id is not None:
            settings.setdefault("pad_token_id", pad_id)

        prompt_ids = self._prompt_ids(prompt)
        captions: list[str] = []
        with _torch_threads(self.cpu_threads if self.device == "cpu" else None):
            for start in range(0, len(videos), self.batch_size):
                captions.extend(self._caption_batch(videos[start : start + self.batch_size], start,
                                                    prompt_ids, settings))
        return captions

    def _caption_batch(self, chunk, start: int, prompt_ids: list[int], settings: dict[str, Any]) -> list[str]:
        import torch

        pixel_values = self._pixel_values(chunk, start)
        input_ids = torch.tensor([prompt_ids] * len(chunk), dtype=torch.long, device=self.device)
        attention_mask = torch.ones_like(input_ids)
        with torch.inference_mode():
            output = self.model.generate(pixel_values=pixel_values, input_ids=input_ids,
                                         attention_mask=attention_mask, **settings)
        if not self.is_encoder_decoder and output.shape[1] >= input_ids.shape[1] and bool(
            (output[:, : input_ids.shape[1]] == input_ids).all()
        ):
            output = output[:, input_ids.shape[1] :]  # decoder-only LMs echo the prompt
        texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [text.strip() for text in texts]


@contextlib.contextmanager
def _torch_threads(count: int | None):
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


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
        return cached_model(key, lambda: _load_tiny(model_id, settings, num_frames))
    if settings.profile == "real":
        path = local_model_path(model_id, settings)  # outside the cache: fails fast, nothing cached
        return cached_model(key, lambda: _load_real(model_id, path, settings, num_frames))
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


def caption_batch_size(device: str) -> int:
    """Videos per generate() call for `device`: $CURATION_CAPTION_BATCH when set, else 8 on the CPU
    (larger batches only add padding there) and on CUDA by memory: 64 from 40 GiB (2x the clips/s
    of batch 8 on an H200 with the real 3.7 B model in fp16), 32 from 20 GiB, else 8."""
    import os

    value = os.environ.get(CAPTION_BATCH_ENV)
    if value:
        return max(1, int(value))
    if not str(device).startswith("cuda"):
        return 8
    import torch

    index = torch.device(device).index
    total = torch.cuda.get_device_properties(index if index is not None else torch.cuda.current_device()).total_memory
    gib = total / 2**30
    return 64 if gib >= 40 else 32 if gib >= 20 else 8


def _image_processor(path: Path | None):
    """BLIP-2's image preprocessing (PIL backend, as the processor VideoBLIP was trained with)."""
    try:
        from transformers import BlipImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - other transformers layouts
        from transformers import BlipImageProcessor as Processor

    if path is not None and (path / "preprocessor_config.json").is_file():
        return Processor.from_pretrained(str(path), local_files_only=True)
    return Processor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


def _ensure_image_token(model, tokenizer) -> None:
    """Give old BLIP-2 checkpoints the `<image>` placeholder transformers 5.x generate() needs."""
    from tokenizers import AddedToken

    config = model.config
    if config.image_token_index is None:
        vocab = tokenizer.get_vocab()
        if IMAGE_TOKEN not in vocab:
            tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, normalized=False, special=True)], special_tokens=True)
            vocab = tokenizer.get_vocab()
        config.image_token_index = int(vocab[IMAGE_TOKEN])
    needed = max(len(tokenizer), int(config.image_token_index) + 1)
    embeddings = model.language_model.get_input_embeddings()
    old = embeddings.weight.shape[0]
    if needed > old:
        import torch

        model.language_model.resize_token_embeddings(needed, mean_resizing=False)
        with torch.no_grad():  # deterministic new rows: the mean of the old ones
            weight = model.language_model.get_input_embeddings().weight
            weight[old:] = weight[:old].mean(dim=0, keepdim=True)
            output = model.language_model.get_output_embeddings()
            if output is not None and output.weight.data_ptr() != weight.data_ptr():
                output.weight[old:] = output.weight[:old].mean(dim=0, keepdim=True)
        config.text_config.vocab_size = needed


def _load_real(model_id: str, path: Path, settings: ModelSettings, num_frames: int) -> VideoCaptioner:
    from transformers import AutoTokenizer, Blip2Config

    _, model_class = _model_classes()
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
    _ensure_image_token(model, tokenizer)
    model.to(device).eval()
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    return VideoCaptioner(model, tokenizer, _image_processor(path), model_id=model_id, profile="real",
                          device=device, batch_size=caption_batch_size(device), num_frames=num_frames, source=str(path),
                          cpu_threads=1 if small else None)


# -- tiny profile -----------------------------------------------------------------------------

_TINY_CORPUS = (
    "a person is cutting vegetables on a wooden board in the kitchen",
    "the camera wearer picks up a cup from the table",
    "a dog runs across a green field under a blue sky",
    "a man rides a bicycle along a city street at night",
    "a woman is painting a wall with a white brush",
    "two children play with a red ball in the park",
    "cars drive on a highway while the sun sets behind the hills",
    "the camera moves slowly over a calm lake with mountains",
    "someone opens a door and walks into a bright room",
    "a cat sleeps on a sofa next to a window",
    "the chef stirs soup in a large pot on the stove",
    "waves crash on a sandy beach as birds fly overhead",
    "a group of people dance on a stage with colorful lights",
    "hands type on a laptop keyboard on a desk",
    "a train passes through a snowy forest",
    "the camera wearer fixes the wheel of a bike with a wrench",
)
_TINY_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2; BOS = EOS = "</s>" as in OPT
_TINY_MERGES = 160


def _tiny_tokenizer():
    """A byte-level BPE learned from a fixed corpus by a deterministic pure-Python loop (no download)."""
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    words = Counter(piece for line in _TINY_CORPUS for piece, _ in pre.pre_tokenize_str(line))
    splits = {word: tuple(word) for word in words}
    merges: list[tuple[str, str]] = []
    for _ in range(_TINY_MERGES):
        pairs: Counter = Counter()
        for word, symbols in splits.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = min(pairs.items(), key=lambda item: (-item[1], item[0]))[0]
        merges.append(best)
        for word, symbols in splits.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            splits[word] = tuple(merged)

    # Only the corpus's own byte symbols (other bytes -> <unk>): tiny noise stays printable text.
    vocab: dict[str, int] = {token: i for i, token in enumerate(_TINY_SPECIALS)}
    for symbol in sorted({symbol for word in words for symbol in word}):
        vocab.setdefault(symbol, len(vocab))
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(_TINY_SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="</s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


def _tiny_config(vocab_size: int):
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    vision = Blip2VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=IMAGE_SIZE, patch_size=32, initializer_range=0.02)
    qformer = Blip2QFormerConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 cross_attention_frequency=1, encoder_hidden_size=32, vocab_size=vocab_size,
                                 max_position_embeddings=64)
    text = OPTConfig(vocab_size=vocab_size, hidden_size=32, word_embed_proj_dim=32, ffn_dim=64,
                     num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=256,
                     pad_token_id=0, bos_token_id=1, eos_token_id=1, dropout=0.0, attention_dropout=0.0)
    # No image_token_index, like the checkpoints saved before transformers had one (kpyu's).
    return Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(),
                       text_config=text.to_dict(), num_query_tokens=4)


def build_tiny_parts(seed: int = TINY_SEED):
    """(model, tokenizer, image_processor) of the tiny profile, seeded, WITHOUT an image token yet.

    The same weights in every process for a given seed (CPU, float32).
    """
    import torch

    tokenizer = _tiny_tokenizer()
    config = _tiny_config(len(tokenizer))
    _, model_class = _model_classes()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.eval()
    return model, tokenizer, _image_processor(None)


def save_tiny_checkpoint(directory: str | Path, seed: int = TINY_SEED) -> Path:
    """Write the tiny model, tokenizer and image processor with save_pretrained (like a hub snapshot)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model, tokenizer, image_processor = build_tiny_parts(seed)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    image_processor.save_pretrained(str(directory))
    return directory


def _load_tiny(model_id: str, settings: ModelSettings, num_frames: int) -> VideoCaptioner:
    model, tokenizer, image_processor = build_tiny_parts()
    _ensure_image_token(model, tokenizer)
    device = settings.resolved_device()
    model.to(device, dtype=settings.torch_dtype()).eval()
    return VideoCaptioner(model, tokenizer, image_processor, model_id=model_id, profile="tiny", device=device,
                          batch_size=caption_batch_size(device), num_frames=num_frames, cpu_threads=1)
