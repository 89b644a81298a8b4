#!/usr/bin/env bash
# The wheel, as a user gets it: build it from the tracked files, install it into a fresh virtual
# environment outside the source tree, and run the package from a folder outside the tree (demo,
# deep.segment, learned-contour proposals, a `bottomup segment` folder job). Fails on the first
# error. Run from anywhere: bash .ci/wheel_check.sh   (PYTHON=python3.X to pick the interpreter)
#
# Cost: pip's cache is reused (no --no-cache-dir), torch is pinned to the CPU build before the
# wheel's own dependencies are resolved (an unpinned torch pulls a multi-GB CUDA build), nothing is
# byte-compiled at install (--no-compile: halved the install), and the checks use the `fast`
# preset on three small images. Most of the rest is numba compiling the kernels of the fresh
# install on the demo's first call.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bottomup-wheel.XXXXXX")"
# The venv (~1.4 GB) is deleted at exit: 2 s here since --no-compile (with pip's .pyc files it took
# ~3 min on the shared machine's disk). WHEEL_CHECK_KEEP=1 leaves the folder.
if [ "${WHEEL_CHECK_KEEP:-0}" = 1 ]; then
    trap 'echo "wheel_check: kept $WORK"' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
case "$WORK/" in "$SRC"/*) echo "wheel_check: work folder $WORK lies inside the source tree" >&2; exit 1;; esac
start=$SECONDS
step() { echo "[wheel_check +$((SECONDS - start))s] $*"; }

# 1. Build from a copy of the tracked (and new, not ignored) files: a stale build/ folder in the
#    tree must not leak deleted files into the wheel.
step "copying the source tree"
mkdir -p "$WORK/src" "$WORK/dist"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$SRC" && git ls-files -co --exclude-standard -- pyproject.toml README.md LICENSE bottomup deep \
        | while IFS= read -r f; do if [ -e "$f" ]; then printf '%s\n' "$f"; fi; done \
        | tar -cf - -T -) | tar -xf - -C "$WORK/src"
else
    cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/LICENSE" "$SRC/bottomup" "$SRC/deep" "$WORK/src/"
fi
step "building the wheel"
"$PYTHON" -m pip wheel -q --no-deps "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/bottomup-*.whl)"
ls -l "$WHEEL"

# 2. A fresh environment, outside the tree.
step "installing into a fresh virtual environment"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q --no-compile torch==2.13.0
"$VPY" -m pip install -q --no-compile "${WHEEL}[deep,plot]"

# 3. Run it from a folder outside the tree, with nothing of the tree on the path.
mkdir -p "$WORK/run"
cd "$WORK/run"
unset PYTHONPATH
export MPLBACKEND=Agg
export PATH="$WORK/venv/bin:$PATH"
step "where the packages come from"
"$VPY" - "$SRC" "$WORK/venv" <<'EOF'
import os, sys
import bottomup, deep
src, venv = (os.path.realpath(p) for p in sys.argv[1:3])
for mod in (bottomup, deep):
    path = os.path.realpath(mod.__file__)
    assert path.startswith(venv + os.sep), f"{mod.__name__} imported from {path}, not from the venv {venv}"
    assert not path.startswith(src + os.sep), f"{mod.__name__} imported from the source tree: {path}"
print("bottomup", bottomup.__version__, "from", os.path.dirname(bottomup.__file__))
EOF

step "bottomup demo"
bottomup demo --out demo
test -s demo/demo.png && test -s demo/demo_ucm2.mat

step "test images (scikit-image's bundled ones, reduced)"
"$VPY" - <<'EOF'
import os
import numpy as np
from skimage import data, io
from skimage.transform import resize
os.makedirs("imgs", exist_ok=True)
for name in ("chelsea", "coffee", "astronaut"):
    img = getattr(data, name)()
    small = resize(img, (160, round(160 * img.shape[1] / img.shape[0])), anti_aliasing=True)
    io.imsave(f"imgs/{name}.png", (np.clip(small, 0, 1) * 255).round().astype(np.uint8))
EOF

step "deep.segment and bottomup.mcg.proposals(contours='learned')"
"$VPY" - <<'EOF'
import numpy as np
import bottomup.mcg
import deep
from bottomup.io import read_image

img = read_image("imgs/chelsea.png")
labels, instances = deep.segment(img)
assert labels.shape == img.shape[:2], labels.shape
assert labels.min() >= 0 and labels.max() < 21, (labels.min(), labels.max())
print(f"deep.segment: {len(np.unique(labels))} classes, {len(instances)} instances")
cands = bottomup.mcg.proposals(img, n=100, contours="learned")
masks = cands.masks(range(3))
assert len(cands.scores) > 0 and masks.shape[1:] == img.shape[:2], (len(cands.scores), masks.shape)
print(f"proposals(contours='learned'): {len(cands.scores)} candidates")
EOF

step "bottomup segment on a folder"
bottomup segment imgs --out seg --preset fast --format png --quiet
"$VPY" - <<'EOF'
import json
from bottomup.io import read_image, read_ucm2
man = json.load(open("seg/manifest-segment.json"))
assert man["n_done"] == 3 and man["n_failed"] == 0, man
for name in ("chelsea", "coffee", "astronaut"):
    h, w = read_image(f"imgs/{name}.png").shape[:2]
    u = read_ucm2(f"seg/{name}.png")
    assert u.shape == (2 * h + 1, 2 * w + 1) and u.max() > 0, (name, u.shape)
print("bottomup segment: 3 ucm2 written and read back")
EOF
step "wheel check passed in $((SECONDS - start)) s"
