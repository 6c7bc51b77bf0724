"""A TorchScript teacher runs code when loaded: the app asks for an explicit tick first."""

import pytest
import torch
from PySide6.QtWidgets import QCheckBox, QComboBox

from gui.document.commands import AddNode, SetProps
from gui.document.kinds import default_props
from gui.document.model import Node
from gui.document.validation import ERROR, node_status


@pytest.mark.slow
def test_torchscript_needs_the_trusted_tick(window, qtbot, tmp_path):
    class Net(torch.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)[:, :10]

    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    props = {**default_props("teacher"), "classes": [str(i) for i in range(10)]}
    window.undo_stack.push(AddNode(window.doc, Node("teacher-1", "teacher", props, (0, 0))))
    window.undo_stack.push(SetProps(window.doc, "teacher-1", {**props, "path": str(path)}, "path"))
    # the engine refuses to open it for inspection, and says what it is
    qtbot.waitUntil(lambda: bool(window.doc.nodes["teacher-1"].info.get("error")), timeout=30000)
    assert "TorchScript" in window.doc.nodes["teacher-1"].info["error"]

    window.inspector.show_node("teacher-1")
    fmt = window.inspector.findChild(QComboBox, "field-format")
    fmt.setCurrentIndex(fmt.findData("torchscript"))
    teacher = window.doc.nodes["teacher-1"]
    assert teacher.props["trusted"] is False
    state, reason = node_status(window.doc, teacher)
    assert state == ERROR and "tick Trusted" in reason
    trusted = window.inspector.findChild(QCheckBox, "field-trusted")
    assert trusted is not None and not trusted.isChecked()
    trusted.setChecked(True)
    assert window.doc.nodes["teacher-1"].props["trusted"] is True
    assert node_status(window.doc, window.doc.nodes["teacher-1"])[0] != ERROR
    window.undo_stack.undo()
    assert window.doc.nodes["teacher-1"].props["trusted"] is False
