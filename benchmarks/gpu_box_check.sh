#!/usr/bin/env bash
# The GPU checks of the motion and learned-scorer benchmarks on a bare CUDA box: one that has
# python3 with torch, transformers and opencv-python-headless but not this project's other
# dependencies (the model layer and the motion scorer import neither dagster nor duckdb).
#
#   benchmarks/gpu_box_check.sh OUT_DIR STAGE...     stages: motion models ocr
#
# Environment (all optional):
#   WHEELS="dir1 dir2"  wheel folders installed with pip --no-deps into /tmp/site first
#                       (PyAV for motion; open_clip_torch, ftfy, wcwidth, easyocr, python-bidi,
#                       pyclipper, shapely for models/ocr): `pip download --no-deps
#                       --python-version 3.12 --only-binary=:all: ...` on a machine with PyPI
#   CLIPS=DIR           the real clips (*.mp4)           FRAMES=DIR  PNG frames for OCR
#   CRAFT=FILE          CRAFT weights (e.g. the float16-rounded copy of gpu_benchmark.py
#                       --write-craft-fp16: 42 MB instead of 83)
#   OPENCL_LOADER=DIR   a libOpenCL.so.1 (ocl-icd) to use when the box has no ICD loader
#   MOTION_ARGS, MODEL_ARGS, OCR_ARGS: extra arguments; STAGE_TIMEOUT (s, default 240) per stage
#
# Each stage writes <OUT_DIR>/<stage>.log (+ its JSON/markdown) as it goes, so a stage cut
# short still leaves its rows; a failing stage does not stop the next one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:?usage: gpu_box_check.sh OUT_DIR STAGE...}; shift
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
LIMIT=${STAGE_TIMEOUT:-240}

if [ -n "${WHEELS:-}" ]; then
  # shellcheck disable=SC2086
  wheels=$(for d in $WHEELS; do ls "$d"/*.whl; done)
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels \
    || { echo "gpu_box_check: wheel install failed" >&2; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  "$PY" -c 'import cv2, numpy, torch, transformers; print("opencv", cv2.__version__, "numpy", numpy.__version__,
"torch", torch.__version__, "transformers", transformers.__version__)'
} 2>&1 | tee "$OUT_DIR/machine.log"

for stage in "$@"; do
  echo "== $stage $(date -u +%T)" | tee -a "$OUT_DIR/machine.log"
  case $stage in
    motion)
      # the NVIDIA driver ships libnvidia-opencl.so.1; the ICD loader needs a vendor file naming it
      if ! grep -qs nvidia /etc/OpenCL/vendors/*.icd && ldconfig -p | grep -q libnvidia-opencl.so.1; then
        mkdir -p /etc/OpenCL/vendors && echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd \
          && echo "registered the NVIDIA OpenCL ICD in /etc/OpenCL/vendors/nvidia.icd"
      fi
      if ! ldconfig -p | grep -q 'libOpenCL.so'; then
        if [ -n "${OPENCL_LOADER:-}" ]; then
          export LD_LIBRARY_PATH=$OPENCL_LOADER${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
          export OPENCV_OPENCL_RUNTIME=$OPENCL_LOADER/libOpenCL.so.1
          echo "no OpenCL ICD loader on this box: using $OPENCL_LOADER/libOpenCL.so.1"
        else
          echo "no OpenCL ICD loader on this box (libOpenCL.so.1): set OPENCL_LOADER" >&2
        fi
      fi
      # shellcheck disable=SC2086
      timeout "$LIMIT" "$PY" benchmarks/motion_gpu_benchmark.py --device gpu --videos "${CLIPS:?}" \
        --out "$OUT_DIR" ${MOTION_ARGS:-} 2>&1 | tee "$OUT_DIR/motion.log"
      ;;
    models)
      # shellcheck disable=SC2086
      timeout "$LIMIT" "$PY" benchmarks/gpu_benchmark.py --device cuda --videos "${CLIPS:?}" --skip ocr \
        --json "$OUT_DIR/models.json" ${MODEL_ARGS:-} 2>&1 | tee "$OUT_DIR/models.log"
      ;;
    ocr)
      # shellcheck disable=SC2086
      timeout "$LIMIT" "$PY" benchmarks/gpu_benchmark.py --device cuda --frames-dir "${FRAMES:?}" \
        --skip decode,clip,videoblip --craft-weights "${CRAFT:?}" --json "$OUT_DIR/ocr.json" ${OCR_ARGS:-} \
        2>&1 | tee "$OUT_DIR/ocr.log"
      ;;
    *) echo "unknown stage $stage (motion, models, ocr)" >&2 ;;
  esac
done
