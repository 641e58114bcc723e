#!/usr/bin/env bash
# Builds what benchmarks/gpu_graph_box.sh needs on a bare GPU box, in two payloads under
# benchmarks/out/gpu_carry/ (ignored by git), each small enough for one device call
# (64 MiB per call, the source tree included):
#
#   stage1/  (~56 MiB) wheels: open_clip_torch ftfy wcwidth easyocr python-bidi pyclipper shapely;
#            PyNvVideoCodec without its FFmpeg sources and samples (pynvvideocodec-slim.tar.gz);
#            craft16.pth (EasyOCR's CRAFT weights rounded to float16, gpu_benchmark.py --write-craft-fp16)
#   stage2/  (~44 MiB) the PyAV wheel; clips/ = the real clips and their manifest
#
#   benchmarks/gpu_graph_prepare.sh            # here (PyPI reachable), with the project venv
# Environment: PYVER (the box's Python, default 3.12), CLIPS (default ../shared/data/real_videos).
# The clips are copied into the ignored folder only to travel; never commit them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
CLIPS=${CLIPS:-../shared/data/real_videos}
PY=${PYTHON:-$(scripts/setup_venv.sh)/bin/python}
OUT=benchmarks/out/gpu_carry
rm -rf "$OUT" && mkdir -p "$OUT/stage1" "$OUT/stage2/clips" "$OUT/tmp"
tag=${PYVER/./}
download() {  # wheels for the box's Python and platform, no dependencies (the box has torch, numpy, ...)
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}
download "$OUT/stage1" open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 easyocr==1.7.2 python-bidi==0.6.12 \
  pyclipper==1.4.0 shapely==2.2.0
download "$OUT/tmp" pynvvideocodec==2.2.4
download "$OUT/stage2" av==18.1.0
# PyNvVideoCodec: the package and its bundled demuxer/CUDA runtime only (its wheel also carries
# FFmpeg's source tarball and samples); duplicate library files become symlinks
"$PY" - "$OUT/tmp"/pynvvideocodec-*cp${tag}*.whl "$OUT/stage1/pynvvideocodec-slim.tar.gz" <<'EOF'
import hashlib, io, os, sys, tarfile, zipfile
wheel, target = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
keep = [n for n in z.namelist() if not n.endswith("/") and n.split("/")[0].lower().startswith("pynvvideocodec")
        and "/samples/" not in n and ".data/" not in n]
seen = {}
with tarfile.open(target, "w:gz") as tar:
    for name in keep:
        data = z.read(name)
        digest = hashlib.sha1(data).hexdigest()
        info = tarfile.TarInfo(name)
        if digest in seen and os.path.dirname(seen[digest]) == os.path.dirname(name):
            info.type, info.linkname = tarfile.SYMTYPE, os.path.basename(seen[digest])
            tar.addfile(info)
            continue
        seen[digest] = name
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
print(f"{target}: {os.path.getsize(target) / 2**20:.1f} MiB")
EOF
HF_HUB_OFFLINE=1 "$PY" benchmarks/gpu_benchmark.py --write-craft-fp16 "$OUT/stage1/craft16.pth"
cp "$CLIPS"/*.mp4 "$CLIPS"/manifest.jsonl "$OUT/stage2/clips/"
rm -rf "$OUT/tmp"
du -sh "$OUT/stage1" "$OUT/stage2"
