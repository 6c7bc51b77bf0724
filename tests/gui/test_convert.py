"""Project files: document ⇄ spec, lenient about what is missing, strict about what is wrong."""

import json

import pytest

from engine.errors import InputError
from engine.spec import SCHEMA_VERSION, load_spec, parse_spec
from gui.document.convert import project_json, project_to_nodes, read_project
from gui.document.model import Document
from tests.gui.helpers import load_into
from tests.helpers import DEMO


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
    link = next(k for k in doc.links if k.src == loose.id)
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


def test_unfinished_nodes_linked_to_the_student_survive_save_and_open(qapp, tmp_path):
    from gui.document.kinds import default_props
    from gui.document.model import Link, Node

    doc = load_into(Document(), DEMO)
    student = doc.student()
    blank = Node("teacher-9", "teacher", default_props("teacher"), (10, 20))  # no file yet
    doc.add_node(blank)
    doc.add_link(Link(blank.id, "teaches", student.id, "teachers"))
    data = doc.inputs_of(student.id, "data")[0]
    doc.set_props(data.id, {"format": "npz", "path": "", "split": {"val": 0.1, "test": 0.1, "seed": 0}})
    path = tmp_path / "p.distill.json"
    path.write_text(project_json(doc, tmp_path))
    again = load_into(Document(), path)
    assert again.nodes["teacher-9"].props["path"] == "" and again.nodes[data.id].props["format"] == "npz"
    assert len(again.links) == len(doc.links)
    assert Link("teacher-9", "teaches", student.id, "teachers") in again.links


@pytest.mark.parametrize("layout, words", [
    ({"nodes": {"t": {"kind": "teacher", "x": 0, "y": 0, "props": {"classes": 5}}}}, "classes"),
    ({"nodes": {"t": {"kind": "teacher", "x": 0, "y": 0, "props": {"name": 5}}}}, "name"),
    ({"nodes": {"d": {"kind": "data", "x": 0, "y": 0, "props": {"split": {"val": "x"}}}}}, "split.val"),
    ({"nodes": {"d": {"kind": "data", "x": 0, "y": 0, "props": {"path": 5}}}}, "path"),
])
def test_a_layout_with_wrong_types_is_refused(qapp, tmp_path, layout, words):
    path = tmp_path / "bad.distill.json"
    path.write_text(json.dumps({"schema_version": 1, "name": "x", "layout": layout}))
    with pytest.raises(InputError) as info:
        project_to_nodes(read_project(path), tmp_path)
    assert words in str(info.value)


def test_a_sloppy_layout_is_cleaned_up(qapp, tmp_path):
    layout = {"nodes": {"data-2": {"ref": "student", "x": "abc", "y": None},
                        "s2": {"kind": "strategy", "x": 1, "y": 2, "props": {}},
                        "t": {"kind": "teacher", "x": 1, "y": 2, "props": {"name": "t"}}},
              "links": [["s2", "strategy", "data-2", "strategy"], ["s2", "strategy", "data-2", "strategy"],
                        ["t", "data", "s2", "nothing"]]}
    data = {**json.loads(DEMO.read_text()), "layout": layout}
    for t in data["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    name, nodes, links = project_to_nodes(data, tmp_path)
    ids = [n.id for n in nodes]
    assert len(ids) == len(set(ids))  # no id given twice
    student = next(n for n in nodes if n.kind == "student")
    assert student.id == "data-2" and student.pos == (560.0, 160.0)  # bad coordinates: the default place
    extra = [k for k in links if k.src == "s2"]
    assert len(extra) == 1  # the duplicate and the link between unknown ports are dropped


def test_impossible_coordinates_are_moved_to_the_default_place_and_said(qapp, tmp_path):
    """Python's json reads NaN, Infinity and 1e400; Qt's scene crashes or draws nothing on them."""
    layout = {"nodes": {"student-1": {"ref": "student", "x": float("nan"), "y": float("inf")},
                        "d": {"kind": "data", "x": float("-inf"), "y": 1e300, "props": {}},
                        "e": {"kind": "export", "x": 12, "y": 10 ** 400, "props": {}}}}
    path = tmp_path / "nan.distill.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "name": "x", "classes": ["a", "b"],
                                "layout": layout}))
    assert "NaN" in path.read_text()
    fixed: list[str] = []
    _, nodes, _ = project_to_nodes(read_project(path), tmp_path, fixed)
    places = {n.id: n.pos for n in nodes}
    assert places == {"student-1": (560.0, 160.0), "d": (0.0, 0.0), "e": (12.0, 0.0)}
    assert len(fixed) == 5 and "student-1: x was nan" in fixed[0] and "placed at 560" in fixed[0]
