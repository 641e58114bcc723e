#!/usr/bin/env bash
# The demo: set up, write the synthetic corpus, run the whole graph, print the funnel.
# Runs on the five real clips too when ../shared/data/real_videos exists (not committed).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."  # the real clone, also when called through a symlink
VENV=$(scripts/setup_venv.sh)
export HF_HUB_OFFLINE=1
# No model weights ship with a fresh clone: the learned scorers run their tiny random-weight
# models unless you bring real ones (README, "Models") and set CURATION_MODEL_PROFILE=real.
export CURATION_MODEL_PROFILE=${CURATION_MODEL_PROFILE:-tiny}
DATA=${DATA_DIR:-data}
"$VENV/bin/curation-assets" demo-data "$DATA/demo_inputs"
"$VENV/bin/curation-assets" run --input "$DATA/demo_inputs/manifest.jsonl" --data-dir "$DATA" --config recipes/demo.yaml
if [ -f ../shared/data/real_videos/manifest.jsonl ]; then
  "$VENV/bin/curation-assets" run --input ../shared/data/real_videos/manifest.jsonl --data-dir "$DATA" --config recipes/demo.yaml
fi
