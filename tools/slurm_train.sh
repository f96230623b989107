#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU.
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [args]
# GPUS (total tasks, default 8), GPUS_PER_NODE (default 8; 0 = CPU nodes, no --gres, gloo),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options, e.g. "--quotatype=auto").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
launch_usage 4 $# "GPUS=8 GPUS_PER_NODE=8 $0 PARTITION JOB_NAME CONFIG WORK_DIR [args]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
launch_python "$ROOT"
launch_check_slurm

# SRUN_ARGS is split on spaces on purpose (several srun options in one variable).
# shellcheck disable=SC2086
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec srun -p "$PARTITION" \
  --job-name="$JOB_NAME" --ntasks="$GPUS" "${GRES[@]}" \
  --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
  "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm "${@:5}"
