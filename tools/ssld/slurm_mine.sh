#!/usr/bin/env bash
# Mine unlabeled images on a Slurm cluster, one task per GPU; rank 0 merges.
#   GPUS=32 GPUS_PER_NODE=8 bash tools/ssld/slurm_mine.sh PARTITION JOB_NAME CONFIG \
#       --pool ... --pool-list ... --val ... --topk 4000 --out ...
# GPUS (total tasks, default 8), GPUS_PER_NODE (default 8; 0 = CPU nodes, no --gres),
# CPUS_PER_TASK (default 5: DataLoader workers decode and hash), SRUN_ARGS (extra srun options).
# --out must be on a file system that every node shares; a killed job resumes when resubmitted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../_launch_checks.sh"
launch_usage 3 $# "GPUS=8 GPUS_PER_NODE=8 $0 PARTITION JOB_NAME CONFIG [args]"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
launch_python "$ROOT"
launch_check_slurm

# SRUN_ARGS is split on spaces on purpose (several srun options in one variable).
# shellcheck disable=SC2086
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec srun -p "$PARTITION" \
  --job-name="$JOB_NAME" --ntasks="$GPUS" "${GRES[@]}" \
  --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
  "$PYTHON" -u "$ROOT/tools/ssld/mine_unlabeled.py" "$CONFIG" --launcher=slurm "${@:4}"
