#!/usr/bin/env bash
# Train on a Slurm cluster, one task per GPU.
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [args]
# GPUS (total tasks, default 8), GPUS_PER_NODE (default 8; 0 = CPU nodes, no --gres, gloo),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options, e.g. "--quotatype=auto").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
launch_usage 4 $# "GPUS=8 GPUS_PER_NODE=8 $0 PARTITION JOB_NAME CONFIG WORK_DIR [args]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
launch_srun "$ROOT" "$1" "$2" tools/train.py "$3" --work-dir="$4" --launcher=slurm "${@:5}"
