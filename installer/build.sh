#!/usr/bin/env bash
# Build the installable app: dist/distill-studio/ (one folder, runs without Python installed),
# from the PyTorch in .venv (CPU or CUDA: whichever `make setup` or you installed there).
#
#   installer/build.sh            build (a few minutes; installs PyInstaller into .venv if missing)
#   installer/build.sh --clean    throw away PyInstaller's cache in build/ first
#
# Prints the build time and the folder's size; the last line is JSON for scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
PYINSTALLER_VERSION=${PYINSTALLER_VERSION:-6.22}  # tested with 6.22.3
clean=()
for arg in "$@"; do
  case "$arg" in
    --clean) clean=(--clean) ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option '$arg' (options: --clean)" >&2; exit 2 ;;
  esac
done

py=.venv/bin/python
if [ ! -x "$py" ] || ! "$py" -c "import torch, PySide6, engine, gui" 2>/dev/null; then
  echo "build.sh: .venv is missing or incomplete; run 'make setup' first (it installs PyTorch and the app)" >&2
  exit 1
fi
if ! "$py" -c "import PyInstaller" 2>/dev/null; then
  echo "build.sh: installing PyInstaller $PYINSTALLER_VERSION into .venv"
  "$py" -m pip install --disable-pip-version-check -q "pyinstaller~=$PYINSTALLER_VERSION.0"
fi
"$py" - <<'EOF'
import torch
cuda = torch.version.cuda
print(f"build.sh: bundling PyTorch {torch.__version__} ({'CUDA ' + cuda if cuda else 'CPU only'})")
EOF

start=$(date +%s)
"$py" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
  "${clean[@]}" installer/distill-studio.spec
seconds=$(( $(date +%s) - start ))

app=dist/distill-studio/distill-studio
if [ ! -x "$app" ]; then
  echo "build.sh: PyInstaller finished but $app is missing; see the messages above" >&2
  exit 1
fi
mb=$(du -sm dist/distill-studio | cut -f1)
echo "build.sh: built dist/distill-studio/ in ${seconds} s, ${mb} MB"
echo "  start it:   $app [PROJECT]"
echo "  install it: installer/install.sh"
printf '{"build_seconds": %d, "folder_size_mb": %d, "program": "%s"}\n' "$seconds" "$mb" "$app"
