#!/usr/bin/env bash
# Build an mmcv wheel with compiled CPU ops against the torch of a given Python, fast.
#
#   bash tools/misc/build_mmcv_wheel.sh PYTHON OUT_DIR [VERSION] [DISTRIBUTION]
#
# DISTRIBUTION defaults to mmcv; `onedl-mmcv` builds the maintained OneDL fork (same import name,
# same source layout) the same way (docs/compatibility.md).
#
# Same sources, same ops and the same optimisation level (-O3) as `MMCV_WITH_OPS=1 pip wheel mmcv`;
# three things make it several times faster on a small machine (measured per file, 2-core VM,
# torch 2.14.1, mmcv/ops/csrc/pytorch/nms.cpp: 23.3 s stock, 13.3 s without debug info,
# 4.2 s with the precompiled header as well):
#   1. no debug information (-g0): Python's build flags add -g, which only makes the objects larger;
#   2. one precompiled header for the ATen/torch headers that every op file includes first
#      (mmcv/ops/csrc/common/pytorch_cpp_helper.hpp and pytorch_device_registry.hpp): GCC then
#      parses them once instead of 77 times. If GCC cannot use the header (other flags), it warns
#      (-Winvalid-pch) and parses the text as before: slower, never different;
#   3. -std=c++20 where torch requires it (torch >= 2.10 headers: "C++20 or later compatible
#      compiler is required to use ATen"); mmcv 2.1.0's setup.py hard-codes -std=c++17.
# The wheel carries the same _ext module and every op of the stock build.
set -euo pipefail
USAGE='usage: build_mmcv_wheel.sh PYTHON OUT_DIR [VERSION] [DISTRIBUTION]'
PY=${1:?$USAGE}
OUT=${2:?$USAGE}
VERSION=${3:-2.1.0}
DIST=${4:-mmcv}
JOBS=${MAX_JOBS:-$(nproc)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
  "$DIST==$VERSION" -d "$WORK" >/dev/null
SDIST=$(ls "$WORK"/*-"$VERSION".tar.gz)  # mmcv-2.1.0.tar.gz, onedl_mmcv-2.3.6.tar.gz
tar -xzf "$SDIST" -C "$WORK"
SRC=${SDIST%.tar.gz}

STD=$("$PY" - <<'EOF'
import torch
major, minor = (int(p) for p in torch.__version__.split('+')[0].split('.')[:2])
print('c++20' if (major, minor) >= (2, 10) else 'c++17')
EOF
)
if [ "$STD" = "c++20" ]; then
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC/setup.py"
fi

# The precompiled header: built with exactly the flags the extension's C++ files get
# (Python's CFLAGS, -fPIC, our -g0, the include dirs and the two macros torch's BuildExtension
# adds), so that GCC accepts it for every file.
PCH_DIR="$WORK/pch"
mkdir -p "$PCH_DIR"
cat > "$PCH_DIR/mmcv_pch.hpp" <<'EOF'
#include <ATen/ATen.h>
#include <ATen/TensorUtils.h>
#include "pytorch_cpp_helper.hpp"
#include "pytorch_device_registry.hpp"
EOF
"$PY" - "$SRC" "$PCH_DIR" "$STD" <<'EOF'
import shlex
import subprocess
import sys
import sysconfig

from torch.utils.cpp_extension import include_paths

src, pch_dir, std = sys.argv[1:4]
flags = shlex.split(sysconfig.get_config_var('CFLAGS') or '') + ['-g0', '-fPIC']
incs = [f'-I{src}/mmcv/ops/csrc/common'] + [f'-I{p}' for p in include_paths()]
incs.append(f'-I{sysconfig.get_paths()["include"]}')
cmd = (['c++'] + flags + incs + [f'-std={std}', '-DTORCH_API_INCLUDE_EXTENSION_H',
                                  '-DTORCH_EXTENSION_NAME=_ext', '-x', 'c++-header',
                                  f'{pch_dir}/mmcv_pch.hpp', '-o', f'{pch_dir}/mmcv_pch.hpp.gch'])
subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
EOF

# $CFLAGS replaces Python's own compile flags in the extension build, so they are repeated here
# (-O3 -DNDEBUG ... as in the stock build) with -g0 after them (the last -g option wins).
PY_CFLAGS=$("$PY" -c "import sysconfig; print(sysconfig.get_config_var('CFLAGS') or '')")
CFLAGS="$PY_CFLAGS -g0 -include $PCH_DIR/mmcv_pch.hpp -Winvalid-pch" \
  MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=$JOBS \
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$OUT" "$SRC"
ls "$OUT"/*mmcv-"$VERSION"-*.whl
