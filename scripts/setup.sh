#!/usr/bin/env bash
# Create .venv and install Distill Studio with its test tools. Safe to run again.
# Without an NVIDIA GPU it installs the CPU build of PyTorch (a few hundred MB, not several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
stamp=.venv/.installed

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "${pip[@]}" install "torch==$TORCH_VERSION"                     # CUDA build from PyPI
  elif ! "${pip[@]}" install "torch==$TORCH_VERSION+cpu" 2>/dev/null; then  # a local CPU wheel
    "${pip[@]}" install "torch==$TORCH_VERSION+cpu" \
      --extra-index-url https://download.pytorch.org/whl/cpu          # PyTorch's CPU index
  fi
fi
"${pip[@]}" install -e ".[dev]"
touch "$stamp"
