#!/usr/bin/env bash
# The GPU check for the OpenCL motion backend, on a GPU machine with the project installed
# (python = the project's venv). Registers the NVIDIA driver's OpenCL ICD when the library
# is there but not registered (needs root; otherwise prints the command and stops), shows
# what OpenCV sees, then measures: motion videos/s over 1..16 processes sharing the GPU,
# beside the decode-only rate and the CPU exact path, and per-clip agreement with the CPU
# (the benchmark's tables), then the real-clip agreement test on the GPU.
#
#   benchmarks/motion_gpu_check.sh [--processes 1,2,4,8,16] [--copies 16] [--videos DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
ICD=/etc/OpenCL/vendors/nvidia.icd

if ! grep -qs nvidia /etc/OpenCL/vendors/*.icd && ldconfig -p | grep -q libnvidia-opencl.so.1; then
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p /etc/OpenCL/vendors
    echo libnvidia-opencl.so.1 > "$ICD"
    echo "motion_gpu_check: registered the NVIDIA OpenCL ICD in $ICD" >&2
  else
    echo "motion_gpu_check: run as root: echo libnvidia-opencl.so.1 > $ICD" >&2
    exit 1
  fi
fi
export OPENCV_OPENCL_DEVICE=":GPU:"
"$PY" -m curation_assets.cli devices
"$PY" benchmarks/motion_gpu_benchmark.py --device gpu --processes 1,2,4,8,16 --copies 16 "$@"
CURATION_TEST_OPENCL_DEVICE=":GPU:" "$PY" -m pytest -q -m slow curation_assets_tests/test_flow_backends.py -k real_clips
