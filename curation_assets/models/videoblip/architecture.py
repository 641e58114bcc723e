"""VideoBLIP's model classes: BLIP-2 whose vision encoder runs over every frame.

`pixel_values` shaped (batch, channels, time, height, width) are flattened to (batch*time, C,
H, W), encoded frame by frame, and the per-frame outputs are concatenated over time; the
Q-Former cross-attends to all frames at once. The module names are BLIP-2's, so the published
checkpoint loads into these classes unchanged. Built on first use (`model_classes()`), so
importing this module stays free of torch. Also: giving old checkpoints the `<image>` token
transformers 5.x generate() needs (`ensure_image_token`).
"""

from __future__ import annotations

import functools
from typing import Any

IMAGE_TOKEN = "<image>"


@functools.lru_cache(maxsize=None)
def model_classes() -> tuple[type, type]:
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
        return model_classes()[0]
    if name == "VideoBlipForConditionalGeneration":
        return model_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ensure_image_token(model, tokenizer) -> None:
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
