#!/usr/bin/env bash
# Runs recipes/gpu_suite.py where neither TensorFlow nor Keras is installed
# (a GPU machine with JAX), then packs its records into one archive.
#
# Usage, from the repository root:
#   bash recipes/gpu_suite.sh ARRAYS ARCHIVE [flags of recipes/gpu_suite.py]
#
# ARRAYS: a folder of arrays exported by recipes/export_arrays.py, or ARRAYS.tar.xz
#   beside where it would be (unpacked first).
# ARCHIVE: the .tar.gz written at the end: the suite's records and its log,
#   without models, checkpoints or TensorBoard logs.
# Wheels in .whl/ (Keras, namex, optree; another folder: GPU_SUITE_WHEELS) are
# installed into /tmp/site first;
# BUILD_NOTES.md ("Training on JAX, and on a GPU without TensorFlow") says how
# to fetch them.
set -uo pipefail
arrays=${1:?"give the exported arrays (folder or .tar.xz) and the archive to write"}
archive=${2:?"give the archive to write (.tar.gz)"}
shift 2
python=${PYTHON:-python3}
wheels=${GPU_SUITE_WHEELS:-.whl}
if ls "$wheels"/*.whl >/dev/null 2>&1; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site "$wheels"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ ! -d "$arrays" ] && [ -f "$arrays.tar.xz" ]; then
  tar -xJf "$arrays.tar.xz" -C "$(dirname "$arrays")" || exit 1
fi
output=${GPU_SUITE_DIR:-/tmp/gpu_suite}
mkdir -p "$output"
# Stopped after GPU_SUITE_SECONDS (default 540), so that what finished is
# still packed within a 10-minute command.
PYTHONUNBUFFERED=1 KERAS_BACKEND=jax timeout "${GPU_SUITE_SECONDS:-540}" \
  "$python" recipes/gpu_suite.py --data_dir="$arrays" --output_dir="$output" "$@" \
  2>&1 | tee "$output/suite_log.txt"
status=${PIPESTATUS[0]}
tar -czf "$archive" --exclude='*.keras' --exclude=checkpoints --exclude=logs \
  -C "$(dirname "$output")" "$(basename "$output")"
echo "suite exit status $status; records in $archive"
exit "$status"
