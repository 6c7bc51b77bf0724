"""Text in the app: a .jsonl/.txt file dropped from the file manager becomes a text data node
whose inspector shows a few texts per class (read by a real engine child, never on the GUI
thread), a bad file shows the engine's message; a .csv stays a table and switches to text in
the inspector; a text teacher shows its tokenizer (or that it reads raw text, or the warning that
it needs one); a model folder (model.onnx + tokenizer.json) dropped makes a teacher; a project
with text data and text teachers opens cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton

from gui.canvas.drops import model_in_folder
from gui.document.commands import AddNode, SetProps
from gui.document.kinds import default_props
from gui.document.model import Node
from gui.document.validation import ERROR, node_status
from gui.panels.text_view import ElidedLabel
from tests.gui.helpers import drop, file_mime

pytestmark = pytest.mark.slow  # a real engine process reads each file

CLASSES = ["games", "science", "sound"]
WORDS = {"games": "arcade puzzle player level score joystick",
         "science": "physics molecule simulation chemistry data lab",
         "sound": "audio mixer synth music player sample"}


def texts(n_per_class: int = 12) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_per_class):
        for label in CLASSES:
            words = WORDS[label].split()
            rows.append({"text": f"{label} tool {i}: " + " ".join(rng.choice(words, 8)), "label": label})
    return rows


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    """A labelled JSONL file, unlabelled lines, a TF-IDF teacher (skl2onnx, string input) and a
    token-id teacher with its WordPiece tokenizer.json beside it, in a folder of its own."""
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from engine.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("texts")
    rows = texts()
    rows[0]["text"] = "games tool 0: <b>not bold</b> " + "a very long description " * 20
    write_jsonl(root / "lab.jsonl", rows)
    (root / "unl.txt").write_text("\n".join(r["text"] for r in rows[:20]) + "\n", encoding="utf-8")
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression(max_iter=200))])
    pipe.fit([r["text"] for r in rows], [CLASSES.index(r["label"]) for r in rows])
    onx = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                  options={id(pipe.steps[-1][1]): {"zipmap": False}})
    (root / "tfidf").mkdir()
    (root / "tfidf" / "model.onnx").write_bytes(onx.SerializeToString())
    # a bag of embeddings over token ids: input_ids [N, L] int64 → logits [N, 3]
    tok = train_tokenizer([r["text"] for r in rows], "wordpiece", 120)
    (root / "bag").mkdir()
    (root / "bag" / "tokenizer.json").write_text(tok.json, encoding="utf-8")
    emb = helper.make_tensor("emb", TensorProto.FLOAT, [tok.vocab_size, 3],
                             np.random.default_rng(1).normal(size=tok.vocab_size * 3).astype(np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["logits"], axes=[1], keepdims=0)], "bag",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], [emb])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    (root / "bag" / "model.onnx").write_bytes(model.SerializeToString())
    (root / "lonely").mkdir()  # the same model without its tokenizer
    (root / "lonely" / "model.onnx").write_bytes(model.SerializeToString())
    return root, tok.vocab_size


def add_student(window, classes=None):
    props = default_props("student")
    if classes is not None:
        props["classes"] = classes
    student = Node(window.doc.new_id("student"), "student", props, (500, 0))
    window.undo_stack.push(AddNode(window.doc, student))


def read(node) -> bool:
    return "preview" in node.info or "error" in node.info


def select(window, node_id):
    window.scene.clearSelection()
    window.scene.node_items[node_id].setSelected(True)
    return window.inspector


def test_dropped_jsonl_previews_texts_per_class(window, qtbot, text_files):
    root, _ = text_files
    add_student(window)  # the digits' classes: the file's labels are not the student's
    assert drop(window.view, file_mime(root / "lab.jsonl"), QPointF(0, 0))
    [node] = window.doc.of_kind("data")
    assert node.props["format"] == "text" and node.props["path"] == str(root / "lab.jsonl")
    assert node.info.get("reading")  # at once: the engine reads it in its own process
    inspector = select(window, node.id)
    assert inspector.findChild(QLabel, "text-preview-status").text() == "reading the texts…"
    qtbot.waitUntil(lambda: read(window.doc.nodes[node.id]), timeout=30000)
    node = window.doc.nodes[node.id]
    assert node.info["preview"]["texts"] == 36 and not node.info["preview"]["labelled"]
    item = window.scene.node_items[node.id]
    assert item.lines[0] == "Text: lab.jsonl" and "36 texts, unlabelled" in item.lines
    assert inspector.findChild(QLabel, "text-preview-status").text() == "36 texts, unlabelled"
    assert inspector.findChild(QLabel, "text-class-0").text() == "the first texts"
    first = inspector.findChild(ElidedLabel, "text-0-0")
    assert first.full.startswith("games tool 0: <b>not bold</b>")
    assert first.text().endswith("…") and "\n" not in first.text()  # one line, elided
    assert "&lt;b&gt;not bold&lt;/b&gt;" in first.toolTip()  # the whole text, as plain text
    assert first.textFormat() == first.textFormat().PlainText

    # the label column, typed in the inspector: the file is read again, texts shown per class
    field = inspector.findChild(QLineEdit, "field-label_column")
    field.setText("label")
    field.editingFinished.emit()
    assert window.doc.nodes[node.id].props["label_column"] == "label"
    qtbot.waitUntil(lambda: bool(window.doc.nodes[node.id].info.get("preview", {}).get("labelled")),
                    timeout=30000)
    node = window.doc.nodes[node.id]
    assert "3 classes · 36 texts" in window.scene.node_items[node.id].lines
    inspector = window.inspector
    assert [inspector.findChild(QLabel, f"text-class-{g}").text() for g in range(3)] == \
        ["games · 12", "science · 12", "sound · 12"]
    shown = [w for w in inspector.findChildren(ElidedLabel) if w.objectName().startswith("text-1-")]
    assert len(shown) == 4 and all(w.full.startswith("science tool") for w in shown)
    # the labels are not the student's classes: said on the node, fixed in one click
    state, reason = node_status(window.doc, node)
    assert state == ERROR and "3 labels of the file are not a class of the student (games, science, sound)" in reason
    warning = inspector.findChild(QLabel, "text-classes-warning")
    assert warning is not None and "games, science, sound" in warning.text()
    inspector.findChild(QPushButton, "text-use-classes").click()
    assert window.doc.student().props["classes"] == CLASSES
    assert inspector.findChild(QPushButton, "text-use-classes") is None
    assert node_status(window.doc, window.doc.nodes[node.id])[0] != ERROR
    window.undo_stack.undo()
    assert window.doc.student().props["classes"] == [str(i) for i in range(10)]


def test_bad_text_files_show_the_engines_message(window, qtbot, tmp_path):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9 au lait\nna\xefve\n".encode("latin-1"))
    assert drop(window.view, file_mime(bad), QPointF(0, 0))
    [node] = window.doc.of_kind("data")
    qtbot.waitUntil(lambda: read(window.doc.nodes[node.id]), timeout=30000)
    node = window.doc.nodes[node.id]
    message = node.info["error"]
    assert "latin.txt is not UTF-8: byte 0xe9 on line 1" in message and "iconv" in message
    assert "Traceback" not in message
    state, reason = node_status(window.doc, node)
    assert state == ERROR and "not UTF-8" in reason
    assert "cannot read the texts" in window.scene.node_items[node.id].lines
    inspector = select(window, node.id)
    assert "not UTF-8" in inspector.findChild(QLabel, "text-preview-error").text()
    # fixed on disk, read again from the inspector
    bad.write_text("café au lait\nnaïve\n", encoding="utf-8")
    inspector.findChild(QPushButton, "text-preview-again").click()
    qtbot.waitUntil(lambda: "preview" in window.doc.nodes[node.id].info, timeout=30000)
    assert window.inspector.findChild(QLabel, "text-preview-status").text() == "2 texts, unlabelled"

    # a missing column: the engine's words, naming the keys the file has
    rows = tmp_path / "rows.jsonl"
    write_jsonl(rows, [{"body": "hello", "y": "a"}])
    props = dict(window.doc.nodes[node.id].props, path=str(rows))
    window.undo_stack.push(SetProps(window.doc, node.id, props, "path"))
    qtbot.waitUntil(lambda: "error" in window.doc.nodes[node.id].info, timeout=30000)
    assert "has no key 'text' (its keys: 'body', 'y')" in window.doc.nodes[node.id].info["error"]


def test_a_csv_stays_a_table_and_switches_to_text(window, qtbot, tmp_path):
    table = tmp_path / "reviews.csv"
    table.write_text("text,stars\ngreat app,good\nit crashes,bad\nlove it,good\n", encoding="utf-8")
    assert drop(window.view, file_mime(table), QPointF(0, 0))
    [node] = window.doc.of_kind("data")
    assert node.props["format"] == "csv" and "text_file" not in node.info
    inspector = select(window, node.id)
    combo = inspector.findChild(QComboBox, "field-format")
    combo.setCurrentIndex(combo.findData("text"))
    node = window.doc.nodes[node.id]
    assert node.props["format"] == "text" and node.props["path"] == str(table)
    assert window.scene.node_items[node.id].lines[0] == "Text: reviews.csv"
    qtbot.waitUntil(lambda: read(window.doc.nodes[node.id]), timeout=30000)
    assert window.doc.nodes[node.id].info["preview"]["texts"] == 3
    field = window.inspector.findChild(QLineEdit, "field-label_column")
    field.setText("stars")
    field.editingFinished.emit()
    qtbot.waitUntil(lambda: bool(window.doc.nodes[node.id].info.get("preview", {}).get("labelled")),
                    timeout=30000)
    assert window.inspector.findChild(QLabel, "text-preview-status").text() == "2 classes · 3 texts"
    window.undo_stack.undo()
    window.undo_stack.undo()  # back to a table: the preview goes
    node = window.doc.nodes[node.id]
    assert node.props["format"] == "csv" and node.props["path"] == str(table) and "text_file" not in node.info
    assert window.inspector.findChild(QLabel, "text-preview-status") is None


def teacher_read(node) -> bool:
    return node.info.get("file") == node.props.get("path") and ("parameters" in node.info or "error" in node.info)


def test_a_dropped_model_folder_is_a_teacher_with_its_tokenizer(window, qtbot, text_files, tmp_path):
    root, vocab = text_files
    assert model_in_folder(root / "bag") == root / "bag" / "model.onnx"
    assert drop(window.view, file_mime(root / "bag"), QPointF(0, 0))
    qtbot.waitUntil(lambda: len(window.doc.of_kind("teacher")) == 1, timeout=30000)
    assert not window.doc.of_kind("data")  # not an image folder
    [teacher] = window.doc.of_kind("teacher")
    assert teacher.props["path"] == str(root / "bag" / "model.onnx")
    words = f"tokenizer: tokenizer.json (WordPiece, {vocab:,} tokens)"
    card = f"tokenizer: WordPiece, {vocab:,} tokens"
    item = window.scene.node_items[teacher.id]
    assert card in item.lines and item.lines[1].endswith("params · token ids") and not item.warning
    inspector = select(window, teacher.id)
    label = inspector.findChild(QLabel, "teacher-tokenizer")
    assert words in label.text() and "beside the model" in label.text()
    assert "input input_ids: batch×length int64 ← ids" in inspector.findChild(QLabel, "teacher-file-info").text()

    # the same model alone: a warning on the node that says what to do
    assert drop(window.view, file_mime(root / "lonely" / "model.onnx"), QPointF(400, 300))
    qtbot.waitUntil(lambda: len(window.doc.of_kind("teacher")) == 2, timeout=30000)
    lonely = next(t for t in window.doc.of_kind("teacher") if "lonely" in t.props["path"])
    item = window.scene.node_items[lonely.id]
    assert "no tokenizer found" in item.lines
    assert "no tokenizer was found: set input.tokenizer" in item.warning and "beside the model" in item.warning
    assert "⚠" in item.toolTip()
    inspector = select(window, lonely.id)
    assert "set input.tokenizer" in inspector.findChild(QLabel, "teacher-tokenizer").text()
    # input.tokenizer set in the inspector: read again, the warning goes
    field = inspector.findChild(QLineEdit, "field-input.tokenizer")
    field.setText(str(root / "bag" / "tokenizer.json"))
    field.editingFinished.emit()
    qtbot.waitUntil(lambda: bool((window.doc.nodes[lonely.id].info.get("text") or {}).get("tokenizer")),
                    timeout=30000)
    item = window.scene.node_items[lonely.id]
    assert card in item.lines and not item.warning
    label = window.inspector.findChild(QLabel, "teacher-tokenizer")
    assert "input.tokenizer" in label.text() and "⚠" not in label.text()

    # a folder of images stays an image-folder data source
    (tmp_path / "pics" / "cat").mkdir(parents=True)
    (tmp_path / "pics" / "cat" / "a.png").write_bytes(b"")
    assert model_in_folder(tmp_path / "pics") is None


def test_a_project_with_text_data_and_text_teachers_opens(window, qtbot, text_files, tmp_path):
    root, vocab = text_files
    spec = {"schema_version": 1, "name": "text-project", "classes": CLASSES,
            "data": {"format": "text", "path": str(root / "lab.jsonl"), "label_column": "label",
                     "unlabeled": str(root / "unl.txt"), "max_length": 32, "vocab_size": 200},
            "teachers": [{"name": "tfidf", "path": str(root / "tfidf" / "model.onnx"), "classes": CLASSES},
                         {"name": "bag", "path": str(root / "bag" / "model.onnx"), "classes": CLASSES}],
            "student": {"architecture": {"kind": "transformer", "vocab_size": 200, "max_length": 32,
                                         "dim": 32, "depth": 1, "heads": 2}},
            "training": {"epochs": 1, "batch_size": 16}}
    path = tmp_path / "text.distill.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    assert window.open_project(path, ask=False)
    teachers = {t.props["name"]: t.id for t in window.doc.of_kind("teacher")}
    [data] = window.doc.of_kind("data")
    qtbot.waitUntil(lambda: read(window.doc.nodes[data.id])
                    and all(teacher_read(window.doc.nodes[t]) for t in teachers.values()), timeout=60000)
    assert "3 classes · 36 texts" in window.scene.node_items[data.id].lines
    assert window.scene.node_items[teachers["tfidf"]].lines[1].endswith("params · raw text")
    assert f"tokenizer: WordPiece, {vocab:,} tokens" in window.scene.node_items[teachers["bag"]].lines
    select(window, teachers["tfidf"])
    assert window.inspector.findChild(QLabel, "teacher-tokenizer").text() == "Text teacher · reads raw text"
    # a text teacher's form: its tokenizer, none of the image and table settings
    assert window.inspector.findChild(QLineEdit, "field-input.tokenizer") is not None
    assert window.inspector.findChild(QLineEdit, "field-input.scale") is None
    assert window.inspector.findChild(QLineEdit, "field-input.columns") is None
    for node in window.doc.nodes.values():
        state, reason = node_status(window.doc, node)
        assert state != ERROR, (node.kind, reason)
        select(window, node.id)  # every inspector form builds
    assert window.inspector.findChild(QLabel, "inspector-status") is not None
