#!/usr/bin/env bash
# The scaling benchmark of docs/benchmark.md ("Scaling on a GPU"), as one command for a bare GPU
# machine that has its own PyTorch + CUDA and no network: install the carried wheels, then sweep
# batch sizes x settings for three teacher -> student pairs with random teachers and synthetic
# inputs, then profile the ranges of one setting; everything under $OUT.
#
#   bash tools/analysis_tools/gpu_benchmark.sh            # on the GPU machine
#   bash tools/analysis_tools/gpu_benchmark.sh --dry-run  # here, on CPU: batch 2, 1 step
#
# Wheels: .whl/ from tools/analysis_tools/gpu_build_wheels.sh (installed with --no-index
# --no-deps into a private --target folder, so the machine's own packages stay as they are).
# Environment: OUT (default work_dirs/gpu_benchmark), PYTHON (default python3), WHL_DIR
# (default .whl), BUDGET_S (default 320, --dry-run 3000): the whole script's time; each pair
# gets its share (PLANNED_S, plus what earlier pairs left) as the benchmark's --time-budget, the
# benchmark then skips the visits that would end past it and lists them, and a pair or the
# profile whose share is under 30 s is skipped with a message.
# Files under $OUT (at most 8, for the device tool): env.txt, log.txt, one JSON per pair,
# summary.md (every pair's table), profile.json.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
DRY=0
if [ "${1:-}" = "--dry-run" ]; then
  DRY=1
elif [ -n "${1:-}" ]; then
  echo "gpu_benchmark: unknown argument '$1' (accepted: --dry-run)" >&2
  exit 2
fi
OUT=${OUT:-$ROOT/work_dirs/gpu_benchmark}
PY=${PYTHON:-python3}
WHL_DIR=${WHL_DIR:-$ROOT/.whl}
if [ "$DRY" = 1 ]; then BUDGET_S=${BUDGET_S:-3000}; else BUDGET_S=${BUDGET_S:-320}; fi
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
elapsed() { echo $(( $(date +%s) - START )); }

# The three pairs: name, config, planned seconds, settings, timed visits per setting.
NAMES=(swin-l_r50 beit-l14_vit-b14 clip-l14_r50)
CONFIGS=(configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py
         configs/scalekd/scalekd_beit-l14_vit-b14_32xb32_300e_in1k.py
         configs/foundation/scalekd_clip-l14_resnet50_32xb64_300e_in1k.py)
PLANNED_S=(150 60 60)
PROFILE_S=30
ALL=fp32_off,bf16_on,bf16_on_cl,bf16_on_compile
NO_COMPILE=fp32_off,bf16_on,bf16_on_cl  # compiling costs a minute or more per model
SETTINGS=($ALL $NO_COMPILE $NO_COMPILE)
REPEATS=(3 2 2)
if [ "$DRY" = 1 ]; then
  # CPU: bf16 is emulated on CPUs without bf16 instructions (minutes per step at these sizes)
  # and compiling takes CPU-minutes, so the dry run times fp32 only: it checks the install,
  # the configs, the FLOP count, the sweep and the files.
  DEVICE=cpu; SIZES=2; ITERS=1; WARMUP=0
  SETTINGS=(fp32_off fp32_off fp32_off); REPEATS=(1 1 1)
  PROFILE_ARGS=(--batch-size 2 --iters 1 --warmup 0 --no-flops)
else
  # 128 first: the batch size of the issue's goal, measured even if the budget runs short.
  DEVICE=cuda; SIZES=128,32,64,256; ITERS=2; WARMUP=1
  PROFILE_ARGS=(--batch-size 128 --iters 3 --warmup 2 --amp --no-flops)
fi

echo "== gpu_benchmark: $( [ "$DRY" = 1 ] && echo dry run, CPU || echo GPU ), budget ${BUDGET_S} s"
SITE=$(mktemp -d "${TMPDIR:-/tmp}/gpu_benchmark_site.XXXXXX")
if ! ls "$WHL_DIR"/*.whl >/dev/null 2>&1; then
  echo "gpu_benchmark: no wheels in $WHL_DIR: run tools/analysis_tools/gpu_build_wheels.sh" \
       "here and carry .whl" >&2
  exit 3
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" "$WHL_DIR"/*.whl || { echo "gpu_benchmark: wheel install failed" >&2; exit 3; }
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    2>/dev/null || echo "nvidia-smi: not available"
  "$PY" - <<'EOF'
import platform
import torch
import mmcv, mmengine, mmpretrain, timm  # noqa: E401
import mmscalekd  # noqa: F401
print('python', platform.python_version(), '| torch', torch.__version__, '| cuda',
      torch.version.cuda, '| cudnn', torch.backends.cudnn.version(), '| gpu',
      torch.cuda.get_device_name() if torch.cuda.is_available() else None)
print('mmengine', mmengine.__version__, '| mmcv', mmcv.__version__, '| mmpretrain',
      mmpretrain.__version__, '| timm', timm.__version__)
EOF
} > "$OUT/env.txt" 2>&1
status=$?
cat "$OUT/env.txt"
if [ "$status" -ne 0 ]; then
  echo "gpu_benchmark: the stack does not import (env.txt); stopping" >&2
  exit 4
fi
echo "== installed and imported in $(elapsed) s"

SUMMARY="$OUT/summary.md"
MD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gpu_benchmark_md.XXXXXX")
{ echo "# gpu_benchmark $( [ "$DRY" = 1 ] && echo "(dry run, CPU)")"; echo; cat "$OUT/env.txt"; } \
  > "$SUMMARY"
for i in "${!NAMES[@]}"; do
  reserve=$PROFILE_S
  for ((j = i + 1; j < ${#NAMES[@]}; j++)); do reserve=$((reserve + PLANNED_S[j])); done
  give=$(( BUDGET_S - $(elapsed) - reserve ))
  name=${NAMES[$i]}
  if [ "$DRY" != 1 ] && [ "$give" -gt $((PLANNED_S[i] * 2)) ]; then give=$((PLANNED_S[i] * 2)); fi
  if [ "$give" -lt 30 ]; then
    echo "== $name: skipped, ${give} s of the budget left for it"
    printf '\n## %s\n\nskipped: time budget\n' "$name" >> "$SUMMARY"
    continue
  fi
  echo "== $name: ${CONFIGS[$i]}, settings ${SETTINGS[$i]}, up to ${give} s (at $(elapsed) s)"
  # Hard stop as a backstop; the JSON is rewritten after every batch size, so a stopped run
  # keeps its finished rows.
  timeout $((give + 60)) "$PY" tools/analysis_tools/benchmark_distill.py "${CONFIGS[$i]}" \
    --device "$DEVICE" --batch-sizes "$SIZES" --settings "${SETTINGS[$i]}" \
    --iters "$ITERS" --repeats "${REPEATS[$i]}" --warmup "$WARMUP" --time-budget "$((give - 10))" \
    --out "$OUT/$name.json" --md-out "$MD_DIR/$name.md" --force
  echo "== $name: exit $? at $(elapsed) s"
  printf '\n## %s\n\n' "$name" >> "$SUMMARY"
  cat "$MD_DIR/$name.md" >> "$SUMMARY" 2>/dev/null || echo "no table (see log.txt)" >> "$SUMMARY"
done

# The ranges of the step (torch.profiler, with CUDA kernel times) for bf16 with the
# optimisations on, the first pair: where the time goes (docs/benchmark.md lists what to look
# for first).
give=$(( BUDGET_S - $(elapsed) ))
if [ "$give" -ge 30 ]; then
  echo "== profile: ${NAMES[0]} ${PROFILE_ARGS[*]} (at $(elapsed) s)"
  timeout "$give" "$PY" tools/analysis_tools/benchmark_distill.py "${CONFIGS[0]}" \
    --device "$DEVICE" "${PROFILE_ARGS[@]}" --out "$OUT/profile.json" --force
  echo "== profile: exit $?"
else
  echo "== profile: skipped, ${give} s of the budget left"
fi
echo "== gpu_benchmark: done in $(elapsed) s; files in $OUT:"
ls -l "$OUT"
