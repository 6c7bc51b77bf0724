"""Project files: document ⇄ spec, lenient about what is missing, strict about what is wrong."""

import json

import pytest

from engine.errors import InputError
from engine.spec import SCHEMA_VERSION, load_spec, parse_spec
from gui.document.convert import project_json, project_to_nodes, read_project
from gui.document.model import Document
from tests.conftest import DEMO


def load_into(doc, path):
    name, nodes, links = project_to_nodes(read_project(path), path.resolve().parent)
    doc.set_name(name)
    for n in nodes:
        doc.add_node(n)
    for link in links:
        doc.add_link(link)
    return doc


def without_layout(spec):
    return spec.model_copy(update={"layout": None})


def test_demo_round_trips_to_the_same_spec(qapp, tmp_path):
    doc = load_into(Document(), DEMO)
    assert len(doc.nodes) == 6 and len(doc.links) == 5
    saved = tmp_path / "sub" / "copy.distill.json"
    saved.parent.mkdir()
    saved.write_text(project_json(doc, saved.parent))
    assert without_layout(load_spec(saved)) == without_layout(load_spec(DEMO))
    assert json.loads(saved.read_text())["teachers"][0]["path"].startswith("/")  # far away: absolute
    again = load_into(Document(), saved)
    assert {n.id: n.pos for n in again.nodes.values()} == {n.id: n.pos for n in doc.nodes.values()}
    assert again.links == doc.links


def test_paths_near_the_project_are_saved_relative(qapp, tmp_path):
    import shutil

    doc = load_into(Document(), DEMO)
    (tmp_path / "teachers").mkdir()
    (tmp_path / "projects").mkdir()
    for node in doc.of_kind("teacher"):
        copy = tmp_path / "teachers" / node.props["path"].rsplit("/", 1)[-1]
        shutil.copy(node.props["path"], copy)
        doc.set_props(node.id, {**node.props, "path": str(copy)})
    saved = tmp_path / "projects" / "p.distill.json"
    saved.write_text(project_json(doc, saved.parent))
    assert json.loads(saved.read_text())["teachers"][0]["path"] == "../teachers/digits-0-4.onnx"
    assert load_spec(saved).teachers[0].path == tmp_path / "teachers" / "digits-0-4.onnx"


def test_unfinished_pipeline_and_loose_nodes_survive_save_and_open(qapp, tmp_path, demo_dict):
    doc = load_into(Document(), DEMO)
    student = doc.student()
    loose = next(n for n in doc.of_kind("teacher") if n.props["name"] == "middle digits")
    link = next(l for l in doc.links if l.src == loose.id)
    doc.remove_link(link)
    doc.move_node(loose.id, (-300, 500))
    path = tmp_path / "p.distill.json"
    path.write_text(project_json(doc, tmp_path))
    data = json.loads(path.read_text())
    assert [t["name"] for t in data["teachers"]] == ["low digits", "high digits"]
    again = load_into(Document(), path)
    assert again.nodes[loose.id].props["name"] == "middle digits"
    assert again.nodes[loose.id].pos == (-300, 500)
    assert len(again.links) == 4 and again.student().id == student.id

    bare = tmp_path / "bare.distill.json"
    bare.write_text(json.dumps({"schema_version": 1, "name": "just started",
                                "layout": {"nodes": {"teacher-9": {"kind": "teacher", "x": 5, "y": 6,
                                                                   "props": {"name": "x", "path": ""}}}}}))
    empty = load_into(Document(), bare)
    assert list(empty.nodes) == ["teacher-9"] and empty.name == "just started"


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"schema_version": SCHEMA_VERSION + 5, "name": "x"}), "newer Distill Studio"),
    (json.dumps({"schema_version": 1, "name": "x", "training": {"epochs": "many"}}), "training.epochs"),
    (json.dumps({"schema_version": 1, "name": "x", "teachers": [{"name": "t"}]}), "teachers[0].path"),
    (json.dumps({"schema_version": 1, "name": "x", "colour": "red"}), "colour"),
])
def test_broken_or_newer_files_are_refused_with_the_reason(qapp, tmp_path, content, words):
    path = tmp_path / "bad.distill.json"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        project_to_nodes(read_project(path), tmp_path)
    assert words in str(info.value)


def test_saved_project_is_a_spec_the_engine_accepts(qapp, tmp_path):
    doc = load_into(Document(), DEMO)
    path = tmp_path / "p.distill.json"
    path.write_text(project_json(doc, tmp_path))
    spec = parse_spec(json.loads(path.read_text()), base_dir=tmp_path)
    assert [t.name for t in spec.teachers] == ["low digits", "middle digits", "high digits"]
    assert spec.teachers[2].mapping == {"seven": "7", "eight": "8", "nine": "9", "zero": "0"}
