"""Helpers the tests share: where the bundled files are, writing specs, and running the real
engine as a subprocess (one-shot, or started and read event by event)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"
COMPRESSED = ROOT / "assets" / "examples" / "digits-compressed.distill.json"
TEACHERS = ROOT / "assets" / "teachers"


def demo_spec() -> dict:
    """The demo spec with absolute teacher paths, so a copy can live anywhere."""
    spec = json.loads(DEMO.read_text())
    for t in spec["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    return spec


def write_spec(folder: Path, spec: dict, name: str = "spec.distill.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(spec, indent=2))
    return path


ENGINE_MAIN = ROOT / "engine" / "__main__.py"


def csv_and_damaged_teacher(folder: Path) -> dict:
    """The demo spec with two problems at once (issue 20): its data a CSV whose row 7 has an
    empty cell in column 'p10', its middle teacher's file cut in half (broken.onnx)."""
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    rows = [",".join(["1"] * 64 + [str(i % 10)]) for i in range(40)]
    rows[5] = ",".join(["1"] * 10 + [""] + ["1"] * 53 + ["5"])
    (folder / "digits.csv").write_text("\n".join([header] + rows) + "\n")
    damaged = (TEACHERS / "digits-4-7.onnx").read_bytes()
    (folder / "broken.onnx").write_bytes(damaged[: len(damaged) // 2])
    spec = demo_spec()
    spec["data"] = {"format": "csv", "path": str(folder / "digits.csv"), "label_column": "label"}
    spec["teachers"][1]["path"] = str(folder / "broken.onnx")
    return spec


def engine_cmd(*args: str) -> list[str]:
    """`distill-engine ARGS` as the app starts it: this checkout's engine by absolute path, with
    `-P` (nothing imported from the working directory; never `python -m engine`)."""
    return [sys.executable, "-P", str(ENGINE_MAIN), *map(str, args)]


def torchrun_cmd(processes: int, *args: str) -> list[str]:
    """`distill-engine ARGS` under torchrun, as the app starts it; run it with PYTHONSAFEPATH=1 in
    the environment (SAFE_PATH), which torchrun's workers inherit."""
    return [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", str(ENGINE_MAIN), *map(str, args)]


SAFE_PATH = {"PYTHONSAFEPATH": "1"}


def run_engine(*args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **SAFE_PATH}
    return subprocess.run(engine_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, **kw)


def parse_events(stdout: str) -> list[dict]:
    """Every stdout line must be one JSON event that fits its model in engine.events (the
    models raise ProtocolError otherwise); returned as plain dicts."""
    from engine.events import parse_event

    return [json.loads(line) for line in stdout.splitlines() if parse_event(line)]


def start_engine(spec, run_dir, db):
    """`engine run` in the background, with pipes to send commands and read events."""
    return subprocess.Popen(engine_cmd("run", spec, "--run-dir", run_dir, "--db", db), cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc, kind, count=1):
    """Read events until the count-th one of this kind."""
    seen = 0
    for line in proc.stdout:
        if json.loads(line)["event"] == kind:
            seen += 1
            if seen == count:
                return


def image_onnx(path: Path, shape: list, meta: dict, softmax: bool = False, classes: int = 3) -> Path:
    """A small ONNX image model built by hand: flatten, one linear layer (zeros), optionally a
    softmax; `meta` goes into its metadata as an export script would write it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    width = int(np.prod([d for d in shape[1:] if isinstance(d, int)]))
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w", "b"], ["z" if softmax else "y"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], axis=1))
    graph = helper.make_graph(
        nodes, "image", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, [width, classes], np.zeros(width * classes)),
         helper.make_tensor("b", TensorProto.FLOAT, [classes], np.zeros(classes))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


# texts: a few realistic sentences of three topics (tests/engine/test_text_*.py)

TEXT_CLASSES = ["sport", "food", "tech"]
TEXT_SENTENCES = {
    "sport": ["The striker scored twice in the second half", "Our team won the cup after extra time",
              "The marathon runner finished in under three hours", "A late goal settled the derby",
              "The tennis final went to five sets", "She swam the relay in record time"],
    "food": ["Slow roast the lamb with garlic and rosemary", "This bakery sells the best sourdough in town",
             "Add a pinch of salt to the boiling pasta water", "The soup needs more pepper and lemon",
             "Fresh basil makes the tomato sauce sing", "Whisk the eggs with sugar until pale"],
    "tech": ["The new laptop ships with a faster processor", "Update the firmware before pairing the phone",
             "The database query now uses an index", "Our server crashed after the kernel upgrade",
             "The compiler warns about unused variables", "A memory leak slowed the browser down"],
}


def labelled_texts(n_each: int = 6) -> list[tuple[str, str]]:
    """(text, label) pairs: each class's sentences, repeated with a number to reach n_each."""
    rows = []
    for label, texts in TEXT_SENTENCES.items():
        for i in range(n_each):
            base = texts[i % len(texts)]
            rows.append((base if i < len(texts) else f"{base} ({i})", label))
    return rows


def write_jsonl(path: Path, rows, text_key: str = "text", label_key: str | None = "label") -> Path:
    """Rows (text, label) as JSON Lines; label_key None: texts alone."""
    path.write_text("".join(json.dumps({text_key: t, **({label_key: y} if label_key else {})}) + "\n"
                            for t, y in rows), encoding="utf-8")
    return path


def tfidf_teacher(path: Path, rows: list[tuple[str, str]], classes: list[str]) -> Path:
    """A scikit-learn TF-IDF + logistic regression on the rows of `classes`, exported with
    skl2onnx: one string input [N, 1], probabilities out (no zipmap). Returns the pipeline."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    own = [(t, classes.index(y)) for t, y in rows if y in classes]
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression(max_iter=300))])
    pipe.fit([t for t, _ in own], [y for _, y in own])
    onx = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                  options={id(pipe.steps[-1][1]): {"zipmap": False}})
    path.write_bytes(onx.SerializeToString())
    return pipe


def token_ids_teacher(folder: Path, rows: list[tuple[str, str]], classes: list[str],
                      names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids"),
                      tokenizer: bool = True, epochs: int = 40, fixed_length: bool = False):
    """A torch bag of embeddings over its own WordPiece tokenizer (trained on the rows, saved as
    tokenizer.json beside the model unless `tokenizer` is False), exported to ONNX with int64
    inputs named `names` (ids, mask[, type ids]) of any length (`fixed_length`: exactly 24 tokens),
    logits out. Returns (model.onnx, tokenizer)."""
    import numpy as np
    import torch

    from engine.tokenizer import train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    own = [(t, classes.index(y)) for t, y in rows if y in classes]
    tok = train_tokenizer([t for t, _ in own], "wordpiece", 150)
    if tokenizer:
        (folder / "tokenizer.json").write_text(tok.json, encoding="utf-8")
    ids = torch.from_numpy(tok.padded([t for t, _ in own], 24, 0))
    mask = (ids != 0).long()
    y = torch.tensor([k for _, k in own])

    class Bag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(tok.vocab_size, 16)
            self.types = torch.nn.Embedding(2, 16)
            self.head = torch.nn.Linear(16, len(classes))

        def forward(self, ids, mask, types=None):
            m = mask.unsqueeze(-1).float()
            e = self.embed(ids) + (self.types(types) if types is not None else 0)
            return self.head((e * m).sum(1) / m.sum(1).clamp(min=1))

    torch.manual_seed(0)
    net = Bag()
    opt = torch.optim.Adam(net.parameters(), 3e-2)
    args = (ids, mask, torch.zeros_like(ids))[:len(names)]
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(*args), y).backward()
        opt.step()
    net.eval()
    path = folder / "model.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation: it still writes plain ONNX
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, tuple(a[:2] for a in args), str(path), input_names=list(names),
                          output_names=["logits"], dynamo=False,
                          dynamic_axes={**{n: {0: "batch"} if fixed_length else {0: "batch", 1: "length"}
                                           for n in names}, "logits": {0: "batch"}})
    assert np.isfinite(net(*args).detach().numpy()).all()
    return path, tok


class Clock:
    """time.time for the store, moved by hand (monotonic stays real: it paces the flushes)."""

    def __init__(self, now: float):
        self.now = now
        self.monotonic, self.strftime = time.monotonic, time.strftime

    def time(self) -> float:
        return self.now
