"""CSV tables: the separator detected, columns chosen by name, categories one-hot, missing cells
by the rule, every bad cell named by its row and column, a test file read with the training
file's encoding, and an exported model that takes raw rows."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine.data import load_dataset
from engine.data.csv_table import BAD_CELLS_SHOWN, detect_delimiter
from engine.data.source import open_source
from engine.data.table import Column, Table
from engine.errors import InputError
from engine.spec import CsvData, QuantizeStep, parse_spec

CLASSES = ["a", "b", "c"]


def write(path, header, rows, delimiter=","):
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def open_csv(path, **settings):
    return open_source(CsvData(path=path, **settings), CLASSES)


def problems(path, **settings):
    with pytest.raises(InputError) as info:
        open_csv(path, **settings)
    return info.value.problems


def spec_for(data: dict, demo_dict: dict) -> object:
    demo_dict["data"], demo_dict["classes"] = data, CLASSES
    for t in demo_dict["teachers"]:  # not loaded here; their classes must fit the spec's
        t["classes"], t["mapping"] = CLASSES[:2], {}
    return parse_spec(demo_dict)


# ── the separator ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("delimiter, said", [(";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")])
def test_the_separator_is_detected_and_said(tmp_path, delimiter, said):
    rows = [[f"{i}.5", f"{i * 2}", "abc"[i % 3], "x, y" if i == 2 else "z"] for i in range(12)]
    path = write(tmp_path / "t.csv", ["f1", "f2", "label", "note"], rows, delimiter)
    source = open_csv(path, label_column="label", columns=["f1", "f2"])
    assert source.sample_shape == (2,)  # not one column of "0.5;0;a;z"
    assert source.x[3].tolist() == [3.5, 6.0] and source.labels[:3].tolist() == [0, 1, 2]
    assert f"fields separated by {said} (detected)" in source.notes[0]


def test_semicolon_files_with_decimal_commas_are_not_one_column():
    assert detect_delimiter("a;b;label\n1,5;2,0;x\n3,5;4;y\n") == ";"
    assert detect_delimiter("name;note\nbob;hi, there\nann;ok\n") == ";"
    assert detect_delimiter("a,b\n1,2\n") == ","
    assert detect_delimiter("only\n1\n2\n") == ","


def test_a_given_separator_is_used(tmp_path):
    path = write(tmp_path / "t.csv", ["f1", "f2"], [["1", "2"], ["3", "4"]], ";")
    source = open_csv(path, delimiter=";")
    assert source.x.tolist() == [[1, 2], [3, 4]] and "(data.delimiter)" in source.notes[0]
    assert "data.categorical" in problems(path, delimiter="|")[0].hint  # "1;2" read as text


# ── columns and their encoding ───────────────────────────────────────────────────────────


def test_columns_are_chosen_by_name_in_the_listed_order(tmp_path):
    path = write(tmp_path / "t.csv", ["id", "f1", "note", "f2", "label"],
                 [["r1", "1", "free text", "10", "a"], ["r2", "2", "more", "20", "b"]])
    source = open_csv(path, label_column="label", columns=["f2", "f1"])  # id, note: never read
    assert source.x.tolist() == [[10, 1], [20, 2]]
    assert source.table.feature_names == ["f2", "f1"] and source.table.is_identity
    trailing = tmp_path / "trailing.csv"  # spreadsheets often end every row with the separator
    trailing.write_text("f1;f2;label;\n1;2;a;\n3;4;b;\n")
    source = open_csv(trailing, label_column="label")
    assert source.x.tolist() == [[1, 2], [3, 4]] and "1 column without a name" in source.notes[1]


def test_categories_are_one_hot_in_sorted_order(tmp_path):
    path = write(tmp_path / "t.csv", ["color", "f", "label"],
                 [["red", "1", "a"], ["blue", "2", "b"], [" green ", "3", "c"], ["", "4", "a"],
                  ["NA", "5", "b"], ["red", "6", "c"]])
    source = open_csv(path, label_column="label", categorical=["color"])
    table = source.table
    assert table.feature_names == ["color=blue", "color=green", "color=red", "f"]
    assert table.categorical[0].categories == ("blue", "green", "red")
    assert source.x[:, :3].tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert source.x[:, 3].tolist() == [1, 2, 3, 4, 5, 6]
    assert not table.is_identity and "one-hot" in " ".join(source.notes)


@pytest.mark.parametrize("rule, fill", [("mean", 3.0), ("median", 2.0), ("zero", 0.0)])
def test_missing_cells_are_filled_by_the_rule(tmp_path, rule, fill):
    path = write(tmp_path / "t.csv", ["f", "g"],
                 [["1", "7"], ["", "7"], ["2", "7"], ["N/A", "7"], ["6", "7"], ["nan", "7"], ["?", "7"], ["null", "7"]])
    source = open_csv(path, missing=rule)
    assert source.x[:, 0].tolist() == [1, fill, 2, fill, 6, fill, fill, fill]
    assert source.table.numeric[0].fill == fill and not source.table.is_identity
    assert np.isnan(source.raw["numeric"][1, 0])  # the exported model is given NaN for them
    assert "5 missing numeric cells filled" in " ".join(source.notes)


def test_a_column_with_no_value_at_all_is_named(tmp_path):
    path = write(tmp_path / "t.csv", ["f", "g", "color"], [["1", "", "NA"], ["2", "?", ""]])
    found = problems(path, missing="mean", categorical=["color"])
    assert [(p.path, p.message) for p in found] == [
        ("data.columns", "column 'g' holds no values (every cell is missing)"),
        ("data.categorical", "column 'color' holds no values (every cell is missing)")]


def test_every_part_of_the_split_keeps_its_raw_cells(tmp_path, demo_dict):
    rows = [[str(i) if i % 4 else "", "abc"[i % 3] if i % 5 else "", "abc"[i % 3]] for i in range(40)]
    path = write(tmp_path / "t.csv", ["f", "color", "label"], rows)
    data = load_dataset(spec_for({"format": "csv", "path": str(path), "label_column": "label", "missing": "median",
                                  "categorical": ["color"], "split": {"val": 0.2, "test": 0.3}}, demo_dict))
    for part in (data.train, data.val, data.test):
        assert set(part.raw) == {"numeric", "categorical"} and len(part.raw["numeric"]) == len(part)
        assert np.array_equal(data.table.encode(part.raw["numeric"], part.raw["categorical"]), part.x)
    assert np.isnan(data.train.raw["numeric"]).any()


def test_every_missing_cell_is_refused_by_default(tmp_path):
    path = write(tmp_path / "t.csv", ["f", "g", "label"], [["1", "", "a"], ["NA", "2", "b"], ["3", "4", "c"]])
    found = problems(path, label_column="label")
    assert [p.message for p in found] == ["row 2, column 'g' of t.csv is empty",
                                          "row 3, column 'f' of t.csv is 'NA', a missing value"]
    assert all("data.missing" in p.hint and p.path == "data.path" for p in found)


def test_every_bad_cell_is_reported_with_its_row_column_and_fix(tmp_path):
    rows = [["1", "2", "a"]] * 3 + [["1", "oops", "b"], ["inf", "2", "c"], ["1", "2"], ["1e39", "", "a"]]
    path = write(tmp_path / "t.csv", ["f", "g", "label"], rows)
    found = problems(path, label_column="label")
    assert [p.message for p in found] == [
        "row 5, column 'g' of t.csv is 'oops', not a number",
        "row 6, column 'f' of t.csv is 'inf', infinite",
        "row 7 of t.csv has 2 fields, the header has 3",
        "row 8, column 'f' of t.csv is too large for 32-bit floats",  # a column's first bad cell is quoted
        "row 8, column 'g' of t.csv is empty"]
    text, inf, ragged, big, empty = (p.hint for p in found)
    assert "data.categorical" in text and "label_column" not in text  # it is set
    assert "finite" in inf and "finite" in big and "quotes" in ragged and "data.missing" in empty
    # unlabelled: the text column might be the label
    assert "data.label_column" in problems(path)[1].hint


def test_many_bad_cells_are_listed_up_to_a_limit_then_counted(tmp_path):
    rows = [[f"x{i}", "", "1"] for i in range(BAD_CELLS_SHOWN)]
    path = write(tmp_path / "t.csv", ["f", "g", "h"], rows)
    found = problems(path)
    assert len(found) == BAD_CELLS_SHOWN + 1
    assert found[0].message.startswith("row 2, column 'f'") and found[1].message.startswith("row 2, column 'g'")
    assert found[-1].message == f"and {BAD_CELLS_SHOWN} more bad cells in t.csv (column 'f': 10, column 'g': 10)"


def test_unknown_and_misplaced_names_are_each_named_with_the_columns(tmp_path):
    path = write(tmp_path / "t.csv", ["f", "color", "label"], [["1", "red", "a"]])
    found = problems(path, label_column="kind", columns=["f", "colour"], categorical=["color", "shade"])
    assert [(p.path, p.message) for p in found] == [
        ("data.label_column", "no column 'kind' in t.csv"), ("data.columns", "no column 'colour' in t.csv"),
        ("data.categorical", "'color' is not one of data.columns"), ("data.categorical", "no column 'shade' in t.csv")]
    assert all(p.hint == "use one of: f, color, label" for p in found if p.message.startswith("no column"))
    found = problems(path, label_column="label", columns=["f", "label"], categorical=["label"])
    assert [p.path for p in found] == ["data.columns", "data.categorical"]
    assert all("label column" in p.message for p in found)


def test_columns_for_gives_each_columns_features(tmp_path):
    table = Table((Column("a", "numeric"), Column("color", "categorical", categories=("blue", "red")),
                   Column("b", "numeric", fill=1.5)), label="kind", missing="mean")
    assert table.feature_names == ["a", "color=blue", "color=red", "b"]
    assert table.columns_for(["b", "color"], "teachers[0].input.columns").tolist() == [3, 1, 2]
    assert table.columns_for(["a"], "w").dtype == np.int64
    with pytest.raises(InputError) as info:
        table.columns_for(["a", "colour"], "teachers[0].input.columns")
    (p,) = info.value.problems
    assert (p.path, p.message, p.hint) == ("teachers[0].input.columns", "no column 'colour' in the table",
                                           "use one of: a, color, b")
    with pytest.raises(InputError, match="'kind' is the label column"):
        table.columns_for(["kind"], "w")
    assert Table.from_dict(json.loads(json.dumps(table.to_dict()))) == table


def test_a_test_file_is_encoded_with_the_training_table(tmp_path, demo_dict):
    train = write(tmp_path / "train.csv", ["f", "color", "label"],
                  [["1", "red", "a"], ["", "blue", "b"], ["5", "red", "c"], ["3", "blue", "a"]], ";")
    test = write(tmp_path / "test.csv", ["label", "color", "f", "extra"],  # its own order and separator
                 [["a", "red", "", "x"], ["b", "green", "9", "x"], ["c", "", "2", "x"]], "\t")
    data = load_dataset(spec_for({"format": "csv", "path": str(train), "label_column": "label",
                                  "categorical": ["color"], "missing": "mean", "test_file": str(test),
                                  "split": {"val": 0, "test": 0}}, demo_dict))
    assert data.table.feature_names == ["f", "color=blue", "color=red"]
    assert data.test.x.tolist() == [[3, 0, 1], [9, 0, 0], [2, 0, 0]]  # the training mean; green: no category
    assert data.test.y.tolist() == [0, 1, 2] and data.test_from == "test.csv"
    assert data.test.raw["categorical"][:, 0].tolist() == ["red", "green", ""]
    write(test, ["label", "f"], [["a", "1"]])
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "csv", "path": str(train), "label_column": "label",
                               "categorical": ["color"], "missing": "mean", "test_file": str(test)}, demo_dict))
    assert info.value.problems[0].path == "data.test_file" and "no column 'color'" in info.value.problems[0].message


# ── the exported model takes raw rows ────────────────────────────────────────────────────


def test_the_exported_graph_encodes_raw_rows_like_the_engine(tmp_path):
    from engine import export, table_export

    table = Table((Column("a", "numeric", fill=2.5), Column("color", "categorical", categories=("blue", "red")),
                   Column("b", "numeric", fill=-1.0), Column("size", "categorical", categories=("L", "M", "S")),
                   Column("c", "numeric", fill=0.0)), label="kind", missing="mean")
    numeric = np.array([[1, np.nan, 3], [np.nan, 5, np.nan], [7, 8, 9]], dtype=np.float32)
    categorical = np.array([["red", "S"], ["green", ""], ["blue", "L"]], dtype=object)
    x = table.encode(numeric, categorical)
    assert x.tolist() == [[1, 0, 1, -1, 0, 0, 1, 3], [2.5, 0, 0, 5, 0, 0, 0, 0], [7, 1, 0, 8, 1, 0, 0, 9]]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    export.to_onnx(model, x[:1], tmp_path / "core.onnx", {"classes": "[]"})
    table_export.wrap(tmp_path / "core.onnx", tmp_path / "raw.onnx", table)
    session = ort.InferenceSession(str(tmp_path / "raw.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        ("numeric", "tensor(float)", ["batch", 3]), ("categorical", "tensor(string)", ["batch", 2])]
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    got = session.run(None, table.raw_inputs(numeric, categorical))[0]
    assert np.abs(got - expected).max() < 1e-5
    # int8: the student's graph quantized, then the encoding in front
    export._quantize(tmp_path / "core.onnx", tmp_path / "q.onnx", QuantizeStep(mode="dynamic"), x, tmp_path)
    table_export.wrap(tmp_path / "q.onnx", tmp_path / "q.onnx", table)
    q = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(q.run(None, table.raw_inputs(numeric, categorical))[0] - expected).max() < 0.1
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "raw.onnx")).metadata_props}
    assert Table.from_dict(json.loads(meta["table"])) == table and meta["classes"] == "[]"
    assert "numeric = np.array([[1, np.nan, 3]]" in table_export.usage(table, table.raw_inputs(numeric, categorical))


# ── done when: a CSV with categories and gaps in, a model that takes raw rows out ────────────

WINE_CLASSES = ["barolo", "grignolino", "barbera"]
NUMERIC = ["alcohol", "malic_acid", "ash", "magnesium", "hue"]


def wine_tables(folder):
    """wine.csv (training) and wine-test.csv, ';'-separated: five of the wine features, a made-up
    `region` that carries signal, empty and NA cells, and in the test file a region never seen."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    rng = np.random.default_rng(0)
    x = np.concatenate([wine.data, wine.data * rng.normal(1, 0.02, wine.data.shape)])  # 356 rows
    y = np.concatenate([wine.target, wine.target])
    x = x[:, [wine.feature_names.index(n) for n in NUMERIC]]
    regions = np.array(["north", "south", "west"])
    region = np.where(rng.random(len(y)) < 0.8, regions[y], regions[rng.integers(0, 3, len(y))])
    rows = [[f"{x[i, 0]:.4g}", region[i], *(f"{v:.4g}" for v in x[i, 1:]), WINE_CLASSES[y[i]]] for i in range(len(y))]
    for r, c in [(3, 1), (10, 2), (40, 4), (77, 5), (100, 0), (250, 3), (300, 1)]:
        rows[r][c] = "NA" if c == 4 else ""
    order = rng.permutation(len(rows))
    test = [rows[i] for i in order[:60]]
    test[0][1], test[1][2] = "east", "NA"  # a region training never saw; a missing number
    header = ["alcohol", "region", *NUMERIC[1:], "kind"]
    return (write(folder / "wine.csv", header, [rows[i] for i in order[60:]], ";"),
            write(folder / "wine-test.csv", header, test, ";"))


def raw_rows(path):
    """The file as anyone reads it: numbers (NaN where empty or NA) and the region as text."""
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f, delimiter=";"))

    def number(cell):
        return float(cell) if cell not in ("", "NA") else np.nan
    numeric = np.array([[number(r[header.index(c)]) for c in NUMERIC] for r in rows], dtype=np.float32)
    region = np.array([[r[header.index("region")]] for r in rows], dtype=object)
    return numeric, region, np.array([WINE_CLASSES.index(r[-1]) for r in rows])


@pytest.mark.slow  # trains a teacher and a student through the engine, then exports: 20-80 s
def test_done_when_a_csv_trains_a_student_whose_onnx_takes_raw_rows(tmp_path, demo_dict):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    from tests.helpers import run_engine, write_spec

    train, test = wine_tables(tmp_path)
    numeric, region, y = raw_rows(train)
    # the teacher reads the encoded features: the numbers (gaps: the column mean), then region one-hot
    filled = np.where(np.isnan(numeric), np.nanmean(numeric, axis=0), numeric)
    onehot = (region == np.array(["north", "south", "west"])).astype(np.float32)
    encoded = np.concatenate([filled[:, :1], onehot, filled[:, 1:]], axis=1).astype(np.float32)
    teacher = LogisticRegression(max_iter=5000).fit(encoded, y)
    (tmp_path / "teacher.onnx").write_bytes(
        to_onnx(teacher, encoded[:1], options={"zipmap": False}).SerializeToString())
    spec = {**demo_dict, "name": "wine table", "classes": WINE_CLASSES,
            "data": {"format": "csv", "path": str(train), "label_column": "kind", "categorical": ["region"],
                     "missing": "mean", "test_file": str(test), "split": {"val": 0.15, "seed": 0}},
            "teachers": [{"name": "logreg", "path": str(tmp_path / "teacher.onnx"), "classes": WINE_CLASSES}],
            "student": {"architecture": {"kind": "mlp", "width": 64, "depth": 2}},
            "strategy": {"kind": "hinton_kd", "temperature": 2.0},
            "training": {"epochs": 30, "batch_size": 32, "lr": 0.003, "device": "cpu", "seed": 0},
            "compression": [{"kind": "quantize", "mode": "static", "calibration_samples": 64,
                             "max_accuracy_drop": 100}],
            "export": {"folder": str(tmp_path / "export")}}
    run = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "export" / "report.json").read_text())
    assert report["input"]["features"] == ["alcohol", "region=north", "region=south", "region=west", *NUMERIC[1:]]
    assert [(i["name"], i["columns"]) for i in report["input"]["inputs"]] == [("numeric", NUMERIC),
                                                                             ("categorical", ["region"])]
    assert "session.run(None, {\"numeric\": numeric, \"categorical\": categorical})" in report["input"]["usage"]
    assert "## Input: raw table rows" in (tmp_path / "export" / "MODEL_CARD.md").read_text()

    # the run's insights (made for the model card): a table's rows and features, by name
    insights = json.loads((tmp_path / "run" / "insights" / "insights.json").read_text())
    assert insights["kind"] == "table" and insights["features"] == report["input"]["features"]
    assert insights["models"][0]["accuracy"] == pytest.approx(report["accuracy"]["pytorch_fp32"], abs=1e-9)
    assert insights["mistakes"] and list(insights["mistakes"][0]["row"]) == ["alcohol", "region", *NUMERIC[1:]]
    arrays = np.load(tmp_path / "run" / "insights" / "arrays.npz", allow_pickle=False)
    for e in insights["attribution"]["samples"]:
        assert arrays[e["student"]].shape == (len(insights["features"]),) and e["input"] is None
        assert arrays[e["teachers"]["logreg"]].shape == (len(insights["features"]),)

    # the delivered files take the test file's raw rows, and agree with the report's figures
    numeric, region, y = raw_rows(test)
    assert np.isnan(numeric).any() and "east" in region
    for name, key in (("student.onnx", "onnx_fp32"), ("student.int8.onnx", "onnx_int8")):
        session = ort.InferenceSession(str(tmp_path / "export" / name), providers=["CPUExecutionProvider"])
        logits = session.run(None, {"numeric": numeric, "categorical": region})[0]
        accuracy = float((logits.argmax(1) == y).mean())
        assert accuracy == pytest.approx(report["accuracy"][key], abs=1e-9), name
        assert accuracy > 0.6  # chance: 1/3
    assert report["accuracy"]["pytorch_fp32"] == pytest.approx(report["accuracy"]["onnx_fp32"], abs=1 / 60)
    assert not (tmp_path / "export" / ".student.core.onnx").exists()


def test_an_unlabelled_transfer_table_takes_its_labels_from_the_test_file(tmp_path):
    from engine.data import load_dataset
    from engine.spec import parse_spec

    (tmp_path / "transfer.csv").write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    (tmp_path / "test.csv").write_text("b,label,a\n" + "".join(f"{i % 3},{'yes' if i % 2 else 'no'},{i}\n"
                                                               for i in range(10)))
    spec = {"schema_version": 1, "name": "t", "classes": ["no", "yes"],
            "data": {"format": "csv", "path": str(tmp_path / "transfer.csv"), "label_column": "label",
                     "test_file": str(tmp_path / "test.csv")},
            "strategy": {"hard_label_weight": 1.0}}
    data = load_dataset(parse_spec(spec))
    assert data.train.y is None and data.test.y.tolist() == [i % 2 for i in range(10)]
    assert data.test.x[:, 0].tolist() == list(range(10))  # columns found by name, in the training order
    assert any("transfer.csv has no column 'label'" in n for n in data.notes)
    (tmp_path / "test.csv").write_text("a,b,a,label\n1,2,100,yes\n3,4,300,no\n")
    with pytest.raises(InputError) as err:
        load_dataset(parse_spec(spec))
    assert err.value.problems[0].path == "data.test_file" and "two columns named 'a'" in err.value.problems[0].message
