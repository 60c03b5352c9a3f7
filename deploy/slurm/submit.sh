#!/bin/bash
# Submits a sharded sweep: an array of SHARDS tasks (sweep-array.sbatch) and a merge job that
# runs only if every task succeeded (--dependency=afterok). Prints both job ids.
#   SHARDS=8 CONFIG=configs/minif2f.toml THEOREMS=benchmarks/minif2f_v4.24_test.jsonl \
#     RUN_DIR=/shared/runs/minif2f deploy/slurm/submit.sh [extra sbatch flags for the array]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CONFIG:?set CONFIG}" "${THEOREMS:?set THEOREMS}" "${RUN_DIR:?set RUN_DIR}" "${SHARDS:?set SHARDS}"
# Absolute paths: the jobs may start in another directory, on another node.
CONFIG=$(realpath "$CONFIG"); THEOREMS=$(realpath "$THEOREMS")
mkdir -p "$RUN_DIR"; RUN_DIR=$(realpath "$RUN_DIR")
export CONFIG THEOREMS RUN_DIR SHARDS
array=$(sbatch --parsable --chdir="$RUN_DIR" --array="0-$((SHARDS - 1))" --export=ALL "$@" \
  "$here/sweep-array.sbatch")
merge=$(sbatch --parsable --chdir="$RUN_DIR" --dependency="afterok:$array" --export=ALL \
  "$here/merge.sbatch")
echo "array job $array ($SHARDS tasks), merge job $merge (after all succeed)"
echo "$array $merge" > "$RUN_DIR/jobs"
