#!/usr/bin/env bash
# One run on a CUDA machine gives every GPU figure (issue 14): the gpu-marked tests, then
# the speed benchmark with every model on the GPU and Whisper in float16, with the GPU
# memory it used. Run it from the repository root of an installed checkout:
#   bash deploy/install.sh && pip install 'nvidia-cublas-cu12==12.9.3.13'   # CUDA 12 cuBLAS
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# CTranslate2 4.8.5 (the Whisper encoder and speech recognition) loads CUDA 12's
# libcublas.so.12 at run time; torch's CUDA 13 build does not ship it. The nvidia wheel
# puts it under site-packages/nvidia/cublas/lib, which is added to the loader path here.
# Everything is written to OUT_DIR (default: gpu-check/): tests.log, bench.json, gpu.csv.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1

CUBLAS=$("$PY" - <<'EOF'
import glob, site, sys
for root in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(f"{root}/nvidia/cublas/lib/libcublas.so.12"):
        print(lib.rsplit("/", 1)[0]); sys.exit()
EOF
)
[ -n "$CUBLAS" ] && export LD_LIBRARY_PATH="$CUBLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.csv"
"$PY" -c "import torch, ctranslate2; print('torch', torch.__version__, torch.cuda.is_available(), 'ct2 cuda devices', ctranslate2.get_cuda_device_count())"

# GPU memory, sampled every half second while the rest runs.
nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -lms 500 \
  >> "$OUT/gpu.csv" 2>/dev/null &
SMI=$!
trap 'kill $SMI 2>/dev/null' EXIT

echo "== gpu-marked tests"
"$PY" -m pytest -m gpu -q -p no:cacheprovider tests/gpu 2>&1 | tee "$OUT/tests.log"

echo "== speed, every model on the GPU, Whisper in float16"
"$PY" benchmarks/pipeline_speed.py --json "$OUT/bench.json" \
  --device cuda --whisper-compute-type float16 --asr-compute-type float16 \
  --face-batch-size 64 --voice-batch-size 32 --text-batch-size 128 2>&1 | tail -n 40

"$PY" - "$OUT/bench.json" "$OUT/gpu.csv" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
for mode in ("stages_captions", "stages_asr"):
    r = report[mode]
    steps = ["decode_segment", "diarize", *r["steps"], "fuse", "calls"]
    print(mode, " ".join(f"{s}={r.get(s + '_rtf', 0):.0f}x" for s in steps),
          f"steady={r['steady_state_rtf']:.1f}x ({r['steady_over_decode']:.2f}x decode-only)")
for key in ("end_to_end", "end_to_end_asr"):
    e = report[key]
    print(key, f"{e['rtf']:.1f}x real time, {e['wall_s']:.1f} s, peak RSS {e['peak_rss_mb']:.0f} MB")
used = [int(line.split(",")[1].split()[0]) for line in open(sys.argv[2])
        if line[:1].isdigit() and "MiB" in line]
print("peak GPU memory", max(used, default=0), "MiB")
EOF
