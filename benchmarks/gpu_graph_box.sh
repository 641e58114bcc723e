#!/usr/bin/env bash
# The whole-box benchmark (gpu_graph_benchmark.py) on a bare CUDA box: python3 with torch,
# transformers and opencv-python-headless, nothing else of this project. Its inputs travel in
# two device calls (benchmarks/gpu_graph_prepare.sh builds them; 64 MiB per call):
#
#   call 1 (carry benchmarks/out/gpu_carry/stage1):
#     benchmarks/gpu_graph_box.sh stage
#   call 2, within ~30 s so the box is still warm (carry benchmarks/out/gpu_carry/stage2):
#     benchmarks/gpu_graph_box.sh run "$OUT" [gpu_graph_benchmark.py arguments...]
#
# `stage` installs stage1's wheels into /tmp/site, PyNvVideoCodec beside them, and keeps the
# CRAFT weights in /tmp/gpu_graph_stage (outside the source tree: they survive until the box
# is released). `run` adds stage2's PyAV wheel, registers nothing else, and runs the benchmark
# with the clips from stage2, writing graph.json / graph.md / graph.log / machine.log under
# OUT as it goes. BENCH_TIMEOUT (s, default 520) bounds the benchmark; its --deadline is set
# 40 s inside it so the last stages are skipped, not cut, when time runs short.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CARRY=benchmarks/out/gpu_carry
STAGE=/tmp/gpu_graph_stage
SITE=/tmp/site
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
mode=${1:?usage: gpu_graph_box.sh stage | run OUT [benchmark args]}; shift

install_wheels() {
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $1 \
    || { echo "gpu_graph_box: wheel install failed" >&2; exit 1; }
}

case $mode in
  stage)
    mkdir -p "$STAGE" "$SITE"
    install_wheels "$(ls $CARRY/stage1/*.whl)"
    tar -xzf "$CARRY/stage1/pynvvideocodec-slim.tar.gz" -C "$SITE"
    cp "$CARRY/stage1/craft16.pth" "$STAGE/"
    "$PY" -c 'import open_clip, easyocr; print("staged: open_clip", open_clip.__version__)'
    "$PY" -c 'import PyNvVideoCodec as n; print("PyNvVideoCodec", n.__version__)' 2>&1 | tail -1
    ls -la "$STAGE"
    ;;
  run)
    OUT_DIR=${1:?usage: gpu_graph_box.sh run OUT [benchmark args]}; shift
    mkdir -p "$OUT_DIR"
    [ -f "$STAGE/craft16.pth" ] || { echo "gpu_graph_box: run 'stage' first (in the call just before)" >&2; exit 1; }
    install_wheels "$(ls $CARRY/stage2/*.whl)"
    {
      date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
      "$PY" -c 'import cv2, numpy, torch, transformers, av; print("opencv", cv2.__version__, "numpy", numpy.__version__,
"torch", torch.__version__, "transformers", transformers.__version__, "av", av.__version__)'
      ldconfig -p | grep -E "libnvcuvid|libnvidia-encode" || echo "no libnvcuvid / libnvidia-encode in ldconfig"
    } 2>&1 | tee "$OUT_DIR/machine.log"
    LIMIT=${BENCH_TIMEOUT:-520}
    timeout "$LIMIT" "$PY" benchmarks/gpu_graph_benchmark.py --device cuda --videos "$CARRY/stage2/clips" \
      --craft-weights "$STAGE/craft16.pth" --deadline $((LIMIT - 40)) --out "$OUT_DIR" "$@" 2>&1 \
      | tee "$OUT_DIR/graph.log"
    ;;
  *) echo "unknown mode $mode (stage, run)" >&2; exit 2 ;;
esac
