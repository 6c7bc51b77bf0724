"""`inspect` on text models (the inputs' roles, the tokenizer beside the model or named, raw
text, the warning when token ids need a tokenizer and none is found) and `preview-text` (counts
and a few texts per class, the engine's message for a bad file)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli import main
from engine.inspect_model import format_report, inspect_model
from engine.text_preview import preview
from engine.text_roles import describe_tokenizer, guess_role, text_inputs, tokenizer_words


def bag_model(path, vocab: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    emb = helper.make_tensor("emb", TensorProto.FLOAT, [vocab, 2],
                             np.zeros(vocab * 2, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["logits"], axes=[1], keepdims=0)], "bag",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], [emb])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture
def bag(tmp_path):
    from engine.tokenizer import train_tokenizer

    tok = train_tokenizer([f"word{i} text {i % 7}" for i in range(50)], "wordpiece", 80)
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "tokenizer.json").write_text(tok.json, encoding="utf-8")
    bag_model(tmp_path / "bag" / "model.onnx", tok.vocab_size)
    (tmp_path / "alone").mkdir()
    bag_model(tmp_path / "alone" / "model.onnx", tok.vocab_size)
    return tmp_path, tok.vocab_size


def test_guess_role_reads_names_and_types():
    assert guess_role("text", "tensor(string)") == "text"
    assert guess_role("input_ids", "tensor(int64)") == "ids"
    assert guess_role("attention_mask", "tensor(int64)") == "mask"
    assert guess_role("token_type_ids", "tensor(int64)") == "type_ids"
    assert guess_role("pixels", "tensor(float)") is None
    # an image model's float input named "input" is not a text model
    assert text_inputs([{"name": "input", "dtype": "float", "shape": [1, 3]}], __import__("pathlib").Path("m"),
                       None) is None


def test_inspect_finds_the_tokenizer_beside_the_model(bag):
    root, vocab = bag
    info = inspect_model(root / "bag" / "model.onnx")
    text = info["text"]
    assert text["inputs"] == [{"name": "input_ids", "dtype": "int64", "role": "ids"}]
    assert text["reads"] == "token ids" and not text["needs_tokenizer"]
    assert text["tokenizer"] == {"path": str(root / "bag" / "tokenizer.json"), "from": "beside the model",
                                 "kind": "WordPiece", "vocab_size": vocab}
    assert tokenizer_words(text) == f"tokenizer: tokenizer.json (WordPiece, {vocab:,} tokens)"
    assert f"tokenizer: tokenizer.json (WordPiece, {vocab:,} tokens) (beside the model" in format_report(info)


def test_inspect_warns_when_token_ids_have_no_tokenizer(bag, capfd):
    root, vocab = bag
    model = root / "alone" / "model.onnx"
    assert inspect_model(model)["text"]["needs_tokenizer"]
    assert main(["inspect", str(model)]) == 0
    out = capfd.readouterr().out
    assert "takes token ids: no tokenizer found" in out
    assert "set input.tokenizer to the tokenizer.json it was trained with, or put tokenizer.json beside" in out
    # named with --tokenizer (the spec's input.tokenizer)
    assert main(["inspect", "--json", str(model), "--tokenizer", str(root / "bag" / "tokenizer.json")]) == 0
    text = json.loads(capfd.readouterr().out)["text"]
    assert text["tokenizer"]["from"] == "input.tokenizer" and not text["needs_tokenizer"]
    (root / "bad.json").write_text("{}", encoding="utf-8")
    text = inspect_model(model, root / "bad.json")["text"]
    assert text["needs_tokenizer"] and "not a tokenizer.json" in text["tokenizer_error"]
    with pytest.raises(ValueError, match="no tokenizer file"):
        describe_tokenizer(root / "nope.json")


def test_inspect_says_a_string_model_reads_raw_text(tmp_path):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression())])
    pipe.fit(["good app", "bad app", "great tool", "awful tool"], [1, 0, 1, 0])
    onx = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                  options={id(pipe.steps[-1][1]): {"zipmap": False}})
    (tmp_path / "m.onnx").write_bytes(onx.SerializeToString())
    text = inspect_model(tmp_path / "m.onnx")["text"]
    assert text["reads"] == "raw text" and text["tokenizer"] is None and not text["needs_tokenizer"]
    assert tokenizer_words(text) == "reads raw text"


def test_preview_text_counts_and_shows_texts_per_class(tmp_path, capfd):
    rows = [{"text": f"{c} text {i}", "label": c} for i in range(6) for c in ("a", "b")]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = preview(tmp_path / "t.jsonl", "text", "label", per_class=2)
    assert result["texts"] == 12 and result["classes_total"] == 2 and result["labelled"]
    assert result["groups"] == [{"class": "a", "count": 6, "texts": ["a text 0", "a text 1"]},
                                {"class": "b", "count": 6, "texts": ["b text 0", "b text 1"]}]
    result = preview(tmp_path / "t.jsonl")
    assert not result["labelled"] and result["groups"][0]["class"] is None
    assert main(["preview-text", str(tmp_path / "t.jsonl"), "--label-column", "label"]) == 0
    assert capfd.readouterr().out.startswith("12 texts in 2 classes\na · 6\n  a text 0")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9\n")
    assert main(["preview-text", "--json", str(tmp_path / "bad.txt")]) == 2
    err = capfd.readouterr().err
    assert err.startswith("cannot preview: bad.txt is not UTF-8") and "hint: convert the file" in err
