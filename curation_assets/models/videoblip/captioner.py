"""The captioner: frames in, one caption per video out (preprocessing, batching, beam search)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DEFAULT_CAPTIONER = "kpyu/video-blip-opt-2.7b-ego4d"
DEFAULT_NUM_FRAMES = 8  # VideoBLIP was fine-tuned on Ego4D clips subsampled to 8 frames
DEFAULT_NUM_BEAMS = 4
DEFAULT_MAX_NEW_TOKENS = 30
CAPTION_BATCH_ENV = "CURATION_CAPTION_BATCH"
IMAGE_SIZE = 224


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


def blip_image_processor(path: Path | None):
    """BLIP-2's image preprocessing (PIL backend, as the processor VideoBLIP was trained with)."""
    try:
        from transformers import BlipImageProcessorPil as Processor
    except ImportError:  # pragma: no cover - other transformers layouts
        from transformers import BlipImageProcessor as Processor

    if path is not None and (path / "preprocessor_config.json").is_file():
        return Processor.from_pretrained(str(path), local_files_only=True)
    return Processor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
