#!/usr/bin/env bash
# Set up mmscalekd on a fresh machine; idempotent (a second run takes seconds).
#
#   bash tools/setup.sh            # apt packages, .venv, the pinned OpenMMLab stack,
#                                  # mmcv 2.1.0 with compiled ops, mmscalekd (editable),
#                                  # Fashion-MNIST for the demo
#
# Environment knobs:
#   PYTHON                 interpreter for the venv (default: python3; tested: 3.11)
#   MMSCALEKD_VENV         venv location (default: <repo>/.venv)
#   MMSCALEKD_WHEEL_CACHE  where the compiled mmcv wheel is kept and reused
#                          (default: ~/.cache/mmscalekd/wheels/torch-<version>)
#   MAX_JOBS               parallel compile jobs for the mmcv build (default: nproc)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMSCALEKD_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
START=$(date +%s)
log() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

# 1. apt packages: a C++ compiler for mmcv's ops, Fashion-MNIST for the demo.
need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. The virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q --disable-pip-version-check)

# 3. CI's torch pair and the build helpers first: mmcv compiles against exactly this torch.
log "installing requirements/ci.txt"
"${PIP[@]}" -r "$ROOT/requirements/ci.txt"

# 4. mmcv 2.1.0 with compiled ops: reuse an installed one, else a cached wheel,
#    else build the wheel once (tools/misc/build_mmcv_wheel.sh: no debug info and a
#    precompiled torch header, about 3.5 min on 2 cores) and cache it.
if "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '2.1.0'" >/dev/null 2>&1; then
  log "mmcv 2.1.0 with compiled ops already installed"
else
  TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__)")
  CACHE=${MMSCALEKD_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmscalekd/wheels/torch-$TORCH_VERSION}
  mkdir -p "$CACHE"
  WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    log "building mmcv 2.1.0 against torch $TORCH_VERSION (cached in $CACHE)"
    FORCE=0
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && FORCE=1
    FORCE_CUDA=$FORCE MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      bash "$ROOT/tools/misc/build_mmcv_wheel.sh" "$PY" "$CACHE" 2.1.0 >/dev/null
    WHEEL=$(ls "$CACHE"/mmcv-2.1.0-*.whl | head -n 1)
  fi
  log "installing $WHEEL"
  "$PY" -m pip uninstall -q -y mmcv-lite >/dev/null 2>&1 || true
  "${PIP[@]}" "$WHEEL"
fi

# 5. mmscalekd itself with the OpenMMLab stack, downstream packages and test tools.
log "installing mmscalekd[all] (editable)"
"${PIP[@]}" -e "$ROOT[all]"

# 6. Fashion-MNIST for the demo: mmpretrain reads the uncompressed IDX files.
SRC=/usr/share/datasets/fashion-mnist
DST=$ROOT/data/fashion_mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -s "$DST/$f" ] && [ -f "$SRC/$f.gz" ]; then
    mkdir -p "$DST"
    gunzip -c "$SRC/$f.gz" > "$DST/$f.tmp" && mv "$DST/$f.tmp" "$DST/$f"
  fi
done

"$PY" -c "import mmscalekd, mmcv, mmpretrain, torch; print('mmscalekd', mmscalekd.__version__, \
'| torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmpretrain', mmpretrain.__version__)"
log "done: activate with 'source $VENV/bin/activate'"
