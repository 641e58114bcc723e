#!/usr/bin/env bash
# Install an OpenCL device the motion backend tests can run on: Debian's pocl (OpenCL on the
# CPU, for correctness only) plus clinfo and the ICD loader. Idempotent: exits 0 at once when
# pocl's vendor file is present. The OpenCL tests select it with OPENCV_OPENCL_DEVICE=":CPU:"
# (curation_assets_tests/test_flow_backends.py) and skip, saying so, when no device exists.
#
# Called from .ci/run before the tests. Needs root (or sudo) and the Debian package mirror;
# without them it says so and exits non-zero.
#
# A GPU needs no package from here: the NVIDIA driver ships libnvidia-opencl.so.1; if
# `curation-assets devices` lists no GPU, register it with
#   echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd
set -euo pipefail

POCL_ICD=/etc/OpenCL/vendors/pocl.icd

if [ -f "$POCL_ICD" ] && command -v clinfo >/dev/null; then
  echo "install_opencl: pocl already installed ($(clinfo -l 2>/dev/null | grep -c Device || echo 0) OpenCL device(s))" >&2
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "install_opencl: $POCL_ICD missing and apt-get not available; install pocl by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO="sudo"
  else
    echo "install_opencl: need root (or sudo) to apt-get install pocl-opencl-icd" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_opencl: installing pocl-opencl-icd, ocl-icd-libopencl1 and clinfo with apt-get" >&2
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends pocl-opencl-icd ocl-icd-libopencl1 clinfo >&2

if ! [ -f "$POCL_ICD" ]; then
  echo "install_opencl: apt-get finished but $POCL_ICD is still missing" >&2
  exit 1
fi
echo "install_opencl: $(clinfo -l 2>/dev/null | tr '\n' ' ')" >&2
