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
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
launch_srun "$ROOT" "$1" "$2" tools/ssld/mine_unlabeled.py "$3" --launcher=slurm "${@:4}"
