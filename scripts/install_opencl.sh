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
. "$(dirname "$0")/apt_install.sh"

POCL_ICD=/etc/OpenCL/vendors/pocl.icd

if [ -f "$POCL_ICD" ] && command -v clinfo >/dev/null; then
  echo "install_opencl: pocl already installed ($(clinfo -l 2>/dev/null | grep -c Device || echo 0) OpenCL device(s))" >&2
  exit 0
fi

apt_install install_opencl --no-install-recommends pocl-opencl-icd ocl-icd-libopencl1 clinfo

if ! [ -f "$POCL_ICD" ]; then
  echo "install_opencl: apt-get finished but $POCL_ICD is still missing" >&2
  exit 1
fi
echo "install_opencl: $(clinfo -l 2>/dev/null | tr '\n' ' ')" >&2
