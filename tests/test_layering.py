"""The layer rules of DESIGN.md, checked at run time in a fresh interpreter: the app never
imports torch; the engine never imports Qt; the document model needs no widgets.

The same rules, and the ones between gui's packages, are import-linter contracts in
pyproject.toml (`lint-imports`): those read the source, these see what importing really loads.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules_after_import(package: str) -> set[str]:
    """Every module in sys.modules after importing each module of the package."""
    names = sorted(p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                   for p in (ROOT / package).rglob("*.py") if p.name != "__main__.py")
    code = ("import sys, importlib\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print('\\n'.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.slow
def test_engine_never_imports_qt():
    loaded = top_level(modules_after_import("engine"))
    assert "torch" in loaded  # the check sees what the engine imports
    assert not loaded & {"PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6"}


def test_gui_never_imports_torch_or_onnxruntime():
    loaded = top_level(modules_after_import("gui"))
    assert not loaded & {"torch", "onnxruntime", "onnx"}


def test_document_model_needs_no_widgets():
    loaded = modules_after_import("gui/document")
    assert not loaded & {"PySide6.QtWidgets", "pyqtgraph", "torch"}
    assert not {m for m in loaded if m.startswith(("gui.canvas", "gui.panels", "gui.engine_client"))}


def test_engine_spec_stays_light():
    heavy = ("torch", "onnxruntime", "numpy", "PySide6")
    code = ("import sys, engine, engine.spec\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_event_models_stay_light():
    """engine.events is shared by the engine and the app: pydantic, no torch, no numpy, no Qt."""
    code = ("import sys, engine.events; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('torch', 'onnxruntime', 'numpy', 'PySide6')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
