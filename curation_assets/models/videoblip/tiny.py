"""The tiny profile: VideoBLIP's classes with a tiny random-weight config and an offline-built
tokenizer, seeded, so tests and CI caption without any download (the scores are noise)."""

from __future__ import annotations

from pathlib import Path

from curation_assets.models.registry import ModelSettings
from curation_assets.models.videoblip.architecture import ensure_image_token, model_classes
from curation_assets.models.videoblip.captioner import IMAGE_SIZE, VideoCaptioner, blip_image_processor, caption_batch_size

TINY_SEED = 0

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


def tiny_tokenizer():
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


def tiny_config(vocab_size: int):
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

    tokenizer = tiny_tokenizer()
    config = tiny_config(len(tokenizer))
    _, model_class = model_classes()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.eval()
    return model, tokenizer, blip_image_processor(None)


def save_tiny_checkpoint(directory: str | Path, seed: int = TINY_SEED) -> Path:
    """Write the tiny model, tokenizer and image processor with save_pretrained (like a hub snapshot)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model, tokenizer, image_processor = build_tiny_parts(seed)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    image_processor.save_pretrained(str(directory))
    return directory


def load_tiny(model_id: str, settings: ModelSettings, num_frames: int) -> VideoCaptioner:
    model, tokenizer, image_processor = build_tiny_parts()
    ensure_image_token(model, tokenizer)
    device = settings.resolved_device()
    model.to(device, dtype=settings.torch_dtype()).eval()
    return VideoCaptioner(model, tokenizer, image_processor, model_id=model_id, profile="tiny", device=device,
                          batch_size=caption_batch_size(device), num_frames=num_frames, cpu_threads=1)
