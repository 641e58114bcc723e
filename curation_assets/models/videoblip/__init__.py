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
first use by `architecture.model_classes()` (also reachable as package attributes).
"""

from curation_assets.models.videoblip.captioner import (
    CAPTION_BATCH_ENV, DEFAULT_CAPTIONER, DEFAULT_NUM_FRAMES, IMAGE_SIZE, VideoCaptioner, caption_batch_size,
    sample_frame_indices,
)
from curation_assets.models.videoblip.loading import load_captioner, local_model_path
from curation_assets.models.videoblip.tiny import build_tiny_parts, save_tiny_checkpoint

__all__ = [
    "CAPTION_BATCH_ENV",
    "DEFAULT_CAPTIONER",
    "DEFAULT_NUM_FRAMES",
    "IMAGE_SIZE",
    "VideoCaptioner",
    "VideoBlipForConditionalGeneration",
    "VideoBlipVisionModel",
    "build_tiny_parts",
    "caption_batch_size",
    "load_captioner",
    "local_model_path",
    "sample_frame_indices",
    "save_tiny_checkpoint",
]


def __getattr__(name: str):
    # the model classes subclass transformers': built on first use, so this import stays torch-free
    if name in ("VideoBlipVisionModel", "VideoBlipForConditionalGeneration"):
        from curation_assets.models.videoblip import architecture

        return getattr(architecture, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
