#!/usr/bin/env bash
# Evaluate a checkpoint on a Slurm cluster, one task per GPU.
#   GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [args]
# GPUS (total tasks, default 8), GPUS_PER_NODE (default 8; 0 = CPU nodes, no --gres, gloo),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_launch_checks.sh"
launch_usage 4 $# "GPUS=8 GPUS_PER_NODE=8 $0 PARTITION JOB_NAME CONFIG CHECKPOINT [args]"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
launch_srun "$ROOT" "$1" "$2" tools/test.py "$3" "$4" --launcher=slurm "${@:5}"
