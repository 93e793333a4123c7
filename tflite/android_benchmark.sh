#!/usr/bin/env bash
# Runs TFLite's benchmark_model on an Android phone over adb and prints the
# average latency of a .tflite gaze model, per configuration.
#
# Usage:
#   tflite/android_benchmark.sh MODEL.tflite [BENCHMARK_MODEL_BINARY]
#   THREADS="1 2 4" DELEGATES="cpu xnnpack gpu" tflite/android_benchmark.sh runs/quick/tflite/gaze_int8.tflite
#
# BENCHMARK_MODEL_BINARY (default: ./benchmark_model, or $BENCHMARK_MODEL) is
# TFLite's prebuilt android_aarch64 `benchmark_model` (see BUILD_NOTES.md for
# where it comes from). Environment: ADB (default adb), ANDROID_SERIAL (picks
# the device), DEVICE_DIR (default /data/local/tmp/tat_keras), THREADS
# (default "1 2 4"), DELEGATES (default "xnnpack cpu gpu"; gpu runs once, the
# thread count does not apply), NUM_RUNS (default 100), WARMUP_RUNS (default 10).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 MODEL.tflite [BENCHMARK_MODEL_BINARY]" >&2
  exit 2
fi
MODEL=$1
BINARY=${2:-${BENCHMARK_MODEL:-./benchmark_model}}
ADB=${ADB:-adb}
DEVICE_DIR=${DEVICE_DIR:-/data/local/tmp/tat_keras}
THREADS=${THREADS:-"1 2 4"}
DELEGATES=${DELEGATES:-"xnnpack cpu gpu"}
NUM_RUNS=${NUM_RUNS:-100}
WARMUP_RUNS=${WARMUP_RUNS:-10}

if [[ ! -f "$MODEL" ]]; then
  echo "error: no model at $MODEL; export one with tflite/export.py." >&2
  exit 1
fi
if [[ ! -f "$BINARY" ]]; then
  echo "error: no benchmark_model binary at $BINARY; download TFLite's" \
       "android_aarch64 benchmark_model (BUILD_NOTES.md) and pass its path." >&2
  exit 1
fi
if ! command -v "$ADB" >/dev/null 2>&1; then
  echo "error: '$ADB' not found; install Android platform-tools or set ADB=." >&2
  exit 1
fi
if ! "$ADB" get-state >/dev/null 2>&1; then
  echo "error: no Android device reachable with '$ADB'; connect one with USB" \
       "debugging on (adb devices), or set ANDROID_SERIAL." >&2
  exit 1
fi

NAME=$(basename "$MODEL")
"$ADB" shell mkdir -p "$DEVICE_DIR"
"$ADB" push "$MODEL" "$DEVICE_DIR/$NAME" >/dev/null
"$ADB" push "$BINARY" "$DEVICE_DIR/benchmark_model" >/dev/null
"$ADB" shell chmod +x "$DEVICE_DIR/benchmark_model"

run() {  # label, extra benchmark_model flags...
  local label=$1
  shift
  local log
  log=$("$ADB" shell "$DEVICE_DIR/benchmark_model" --graph="$DEVICE_DIR/$NAME" \
        --num_runs="$NUM_RUNS" --warmup_runs="$WARMUP_RUNS" "$@" 2>&1) || {
    echo "$label: benchmark_model failed:" >&2
    echo "$log" >&2
    return 1
  }
  # benchmark_model ends with "... Inference (avg): N" (microseconds) or
  # "avg=N" on the timing line of the measured runs.
  local avg
  avg=$(echo "$log" | sed -n 's/.*Inference (avg): *\([0-9.e+]*\).*/\1/p' | tail -n 1)
  if [[ -z "$avg" ]]; then
    avg=$(echo "$log" | sed -n 's/.*count=[0-9]* .*avg=\([0-9.e+]*\).*/\1/p' | tail -n 1)
  fi
  if [[ -z "$avg" ]]; then
    echo "$label: no average latency in benchmark_model output" >&2
    return 1
  fi
  awk -v label="$label" -v us="$avg" 'BEGIN { printf "%-24s %10.3f ms\n", label, us / 1000 }'
}

echo "model: $NAME  device: $("$ADB" shell getprop ro.product.model | tr -d '\r')"
status=0
for delegate in $DELEGATES; do
  case $delegate in
    gpu)
      run "gpu" --use_gpu=true || status=1 ;;
    xnnpack)
      for t in $THREADS; do
        run "xnnpack threads=$t" --num_threads="$t" --use_xnnpack=true || status=1
      done ;;
    cpu)
      for t in $THREADS; do
        run "cpu threads=$t" --num_threads="$t" --use_xnnpack=false || status=1
      done ;;
    *)
      echo "error: unknown delegate '$delegate' (use xnnpack, cpu, gpu)" >&2
      exit 2 ;;
  esac
done
exit $status
