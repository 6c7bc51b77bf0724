"""The exported model of a table takes raw rows: the table's encoding (engine/data/table.py) as
an ONNX graph in front of the student's.

Inputs of the wrapped model, each present only where the table has such columns:

- `numeric`: float32 [batch, n_numeric], the numeric columns in the table's order, NaN for a
  missing cell (filled inside the graph by the training rule: IsNaN, then Where);
- `categorical`: string [batch, n_categorical], the categorical columns' cells as text, in the
  table's order; each becomes its one-hot block (ai.onnx.ml OneHotEncoder, `zeros=1`: a value
  training never saw, or a missing one, encodes as no category).

Why two typed inputs and not one string tensor of every cell: onnxruntime's string-to-float
Cast reads '1,5' as 1 and '1_000' as 1 without an error, and fails the whole batch on an empty
cell, so numbers are parsed by the caller (numpy, pandas, csv) where a bad cell is visible.

The student's own graph (input `x`, the encoded features) is built and quantized first; the
preprocessing is merged in front of it with onnx.compose, so int8 quantization never meets a
string operator.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from engine.atomic_io import atomic_write
from engine.data.table import Table

PREFIX = "table/"  # the names of the preprocessing graph's nodes and tensors
ML_OPSET = 3
MISSING_WORDS = {"refuse": "NaN is passed on (training refused missing cells): NaN logits",
                 "mean": "NaN, filled with the training file's column mean",
                 "median": "NaN, filled with the training file's column median",
                 "zero": "NaN, filled with 0"}


def wraps(table: object | None) -> bool:
    """Whether an export of data with this table takes raw rows (the encoding is not identity)."""
    return isinstance(table, Table) and not table.is_identity


def preprocessing_graph(table: Table, opsets: dict[str, int], ir_version: int):
    """The ONNX model raw rows -> `table/features` float32 [batch, table.width]."""
    from onnx import TensorProto, helper

    nodes, inits, pieces, pending = [], [], [], []
    numeric, categorical = table.numeric, table.categorical
    if numeric:
        fill = np.array([np.nan if c.fill is None else c.fill for c in numeric], dtype=np.float32)
        inits.append(helper.make_tensor(PREFIX + "fill", TensorProto.FLOAT, [len(fill)], fill.tolist()))
        nodes += [helper.make_node("IsNaN", ["numeric"], [PREFIX + "missing"], name=PREFIX + "IsNaN"),
                  helper.make_node("Where", [PREFIX + "missing", PREFIX + "fill", "numeric"],
                                   [PREFIX + "filled"], name=PREFIX + "Where")]

    def gather_numeric() -> None:  # consecutive numeric columns: one Gather
        if pending:
            k = len(pieces)
            inits.append(helper.make_tensor(f"{PREFIX}num_index{k}", TensorProto.INT64, [len(pending)], pending))
            nodes.append(helper.make_node("Gather", [PREFIX + "filled", f"{PREFIX}num_index{k}"],
                                          [f"{PREFIX}piece{k}"], axis=1, name=f"{PREFIX}Gather{k}"))
            pieces.append(f"{PREFIX}piece{k}")
            pending.clear()

    i_num = i_cat = 0
    for column in table.columns:
        if column.kind == "numeric":
            pending.append(i_num)
            i_num += 1
            continue
        gather_numeric()
        if column.categories:  # a column with no category adds no feature
            k = len(pieces)
            inits.append(helper.make_tensor(f"{PREFIX}cat_index{k}", TensorProto.INT64, [], [i_cat]))
            nodes += [helper.make_node("Gather", ["categorical", f"{PREFIX}cat_index{k}"], [f"{PREFIX}cells{k}"],
                                       axis=1, name=f"{PREFIX}Gather{k}"),
                      helper.make_node("OneHotEncoder", [f"{PREFIX}cells{k}"], [f"{PREFIX}piece{k}"],
                                       domain="ai.onnx.ml", cats_strings=list(column.categories), zeros=1,
                                       name=f"{PREFIX}OneHot{k}:{column.name}"[:200])]
            pieces.append(f"{PREFIX}piece{k}")
        i_cat += 1
    gather_numeric()
    nodes.append(helper.make_node("Concat", pieces, [PREFIX + "features"], axis=1, name=PREFIX + "Concat"))
    inputs = ([helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", len(numeric)])] if numeric
              else []) + ([helper.make_tensor_value_info("categorical", TensorProto.STRING,
                                                          ["batch", len(categorical)])] if categorical else [])
    graph = helper.make_graph(nodes, "table_encoding", inputs,
                              [helper.make_tensor_value_info(PREFIX + "features", TensorProto.FLOAT,
                                                             ["batch", table.width])], initializer=inits)
    return helper.make_model(graph, ir_version=ir_version,
                             opset_imports=[helper.make_opsetid("", opsets[""]),
                                            helper.make_opsetid("ai.onnx.ml", opsets["ai.onnx.ml"])])


def wrap(core_path: Path, out_path: Path, table: Table) -> None:
    """Write `out_path` (may be `core_path`): the student's ONNX graph at `core_path` (input `x`)
    with the table's encoding in front, so it takes raw rows. The student's metadata is kept,
    its `input` rewritten and the table added (`table`: Table.to_dict as JSON)."""
    import onnx
    from onnx import compose, helper

    core = onnx.load(str(core_path))
    opsets = {o.domain or "": o.version for o in core.opset_import}  # a quantized core has ml 5
    opsets.setdefault("ai.onnx.ml", ML_OPSET)
    del core.opset_import[:]
    core.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    pre = preprocessing_graph(table, opsets, core.ir_version)
    merged = compose.merge_models(pre, core, io_map=[(PREFIX + "features", "x")],
                                  name=core.graph.name, doc_string=core.graph.doc_string)
    unique = {o.domain: o.version for o in merged.opset_import}  # merge_models lists shared ones twice
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in unique.items())
    merged.producer_name, merged.producer_version = core.producer_name, core.producer_version
    props = {p.key: p.value for p in core.metadata_props}
    props.update(input=json.dumps(describe(table)["inputs"]), table=json.dumps(table.to_dict()))
    del merged.metadata_props[:]
    for key, value in props.items():
        merged.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(merged)
    atomic_write(out_path, lambda tmp: onnx.save(merged, str(tmp)))


def describe(table: Table, example: dict[str, np.ndarray] | None = None,
             classes: list[str] | None = None) -> dict:
    """What the wrapped model takes, for report.json: its inputs (names, types, shapes, the
    columns in order), the encoding, and a short onnxruntime snippet (`example`: raw inputs of
    a few rows to show; `classes`: to name the prediction)."""
    inputs = []
    if table.numeric:
        inputs.append({"name": "numeric", "dtype": "float32", "shape": ["batch", len(table.numeric)],
                       "columns": [c.name for c in table.numeric], "missing": MISSING_WORDS[table.missing]})
    if table.categorical:
        inputs.append({"name": "categorical", "dtype": "string", "shape": ["batch", len(table.categorical)],
                       "columns": [c.name for c in table.categorical],
                       "categories": {c.name: list(c.categories) for c in table.categorical},
                       "missing": "any text that is not a category (empty, NA) encodes as no category"})
    return {"inputs": inputs, "features": table.feature_names, "table": table.to_dict(),
            "preprocessing": "the table's encoding is inside the graph: give raw rows",
            "usage": usage(table, example, classes)}


def usage(table: Table, example: dict[str, np.ndarray] | None = None, classes: list[str] | None = None) -> str:
    """Python that runs the wrapped model on one raw row."""
    lines = ["import numpy as np", "import onnxruntime as ort", "",
             'session = ort.InferenceSession("student.onnx")']
    feeds = []
    if table.numeric:
        row = example["numeric"][0].tolist() if example and "numeric" in example else [0.0] * len(table.numeric)
        values = ", ".join("np.nan" if np.isnan(v) else f"{v:.7g}" for v in row)
        lines.append(f"numeric = np.array([[{values}]], dtype=np.float32)  # "
                     f"{', '.join(c.name for c in table.numeric)}; NaN: missing")
        feeds.append('"numeric": numeric')
    if table.categorical:
        row = example["categorical"][0].tolist() if example and "categorical" in example else \
            [c.categories[0] if c.categories else "" for c in table.categorical]
        lines.append(f"categorical = np.array([[{', '.join(repr(str(v)) for v in row)}]], dtype=object)  # "
                     f"{', '.join(c.name for c in table.categorical)}")
        feeds.append('"categorical": categorical')
    lines.append(f"logits = session.run(None, {{{', '.join(feeds)}}})[0]")
    if classes:
        lines.append(f"print({classes!r}[int(logits.argmax(1)[0])])")
    return "\n".join(lines)


def card_section(described: dict) -> str:
    """MODEL_CARD.md's words on the raw-row inputs."""
    rows = "\n".join(f"| `{i['name']}` | {i['dtype']} {i['shape']} | {', '.join(i['columns'])} | {i['missing']} |"
                     for i in described["inputs"])
    cats = "".join(f"\n- `{name}`: {', '.join(values) or '(none)'}"
                   for i in described["inputs"] for name, values in i.get("categories", {}).items())
    return (f"\n## Input: raw table rows\n\nThe table's encoding is inside the model "
            f"({len(described['features'])} features). Give the columns in this order:\n\n"
            f"| input | type | columns | missing cells |\n|---|---|---|---|\n{rows}\n"
            + (f"\nCategories (one-hot, in this order):{cats}\n" if cats else "")
            + f"\n```python\n{described['usage']}\n```\n")


class RawRowsSession:
    """An onnxruntime session of the wrapped model that the export's checks call as they call
    the student's (`run(None, {"x": encoded rows})`): each encoded row is one of `part`'s, and
    the wrapped model is fed that row's raw cells instead. PyTorch reads the encoded rows, ONNX
    the raw ones, so parity and accuracy check the encoding in the graph too."""

    def __init__(self, session, part) -> None:
        self.session, self._raw = session, part.raw
        self._row = {row.tobytes(): i for i, row in enumerate(np.ascontiguousarray(part.x, dtype=np.float32))}
        self._last: tuple[np.ndarray, dict] | None = None  # the latency loop feeds one batch again and again

    def get_inputs(self) -> list:
        """The input the checks feed: the student's encoded rows, `x`."""
        return [SimpleNamespace(name="x")]

    def run(self, names, feeds: dict[str, np.ndarray]):
        x = feeds["x"]
        if self._last is None or self._last[0] is not x:
            rows = np.ascontiguousarray(x, dtype=np.float32)
            pick = np.array([self._row[row.tobytes()] for row in rows], dtype=np.int64)
            self._last = (x, {k: v[pick] for k, v in self._raw.items()})
        return self.session.run(names, self._last[1])
