"""What an exported text student carries: its tokenizer beside it, and how to use the two.

The ONNX student of text data takes `input_ids` int64 [batch, length] (any length up to the
data's max_length; padding is masked inside the graph), the ids of `tokenizer.json`, saved beside
it; the model card shows the few lines that turn a text into logits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.atomic_io import atomic_write_text

TOKENIZER_FILE = "tokenizer.json"


def is_text(data) -> bool:
    return getattr(data, "text", None) is not None


def as_input(data, x: np.ndarray) -> np.ndarray:
    """The exported model's input for samples x: token ids as int64 for text, else x."""
    return np.ascontiguousarray(x, dtype=np.int64) if is_text(data) else x


def write_tokenizer(out_dir: Path, data) -> Path:
    path = Path(out_dir) / TOKENIZER_FILE
    atomic_write_text(path, data.text.json)
    return path


def describe(data, max_length: int) -> dict:
    return {"name": "input_ids", "shape": ["batch", "length"], "dtype": "int64", "tokenizer": TOKENIZER_FILE,
            "max_length": max_length, "pad_id": data.text.pad_id,
            "preprocessing": f"token ids of {TOKENIZER_FILE}, at most {max_length}, right-padded with "
                             f"{data.text.pad_id}"}


def card_section(i: dict, classes: list[str]) -> str:
    return f"""
## Using it on text

The model reads token ids of `{i['tokenizer']}` (beside it): at most {i['max_length']} per text,
padded with id {i['pad_id']} (padding is masked inside the model, so a batch may be padded to its
longest text).

```python
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer

tok = Tokenizer.from_file("{i['tokenizer']}")
tok.enable_truncation({i['max_length']})
tok.enable_padding(pad_id={i['pad_id']})
session = ort.InferenceSession("student.onnx")
classes = {classes!r}
texts = ["first text", "another, longer text"]
ids = np.array([e.ids for e in tok.encode_batch(texts)], dtype=np.int64)
logits = session.run(None, {{"input_ids": ids}})[0]
print([classes[k] for k in logits.argmax(1)])
```
"""


def run_tokenizer(spec, run_dir: Path):
    """The spec with the tokenizer its run saved (trained, or the spec's file as it was when the
    run started), so a resume or an export reads the run's own ids, whatever became of the
    tokenizer cache or of the file the spec names."""
    saved = Path(run_dir) / "tokenizer.json"
    if spec.data.format == "text" and saved.is_file():
        return spec.model_copy(update={"data": spec.data.model_copy(update={"tokenizer": saved})})
    return spec
