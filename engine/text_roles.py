"""What each input of an ONNX text model takes (its *role*), guessed from the input's name and
type, and what `inspect` says about a text model: its inputs' roles and its tokenizer. Light:
no torch, no numpy, no onnx (engine/text_teachers.py runs the model; engine/inspect_model.py
reads the file)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.regular_files import FileTooLarge, NotRegularFile, read_regular_text

ROLES = ("ids", "mask", "type_ids", "positions", "text")
TOKEN_ROLES = ("ids", "mask", "type_ids", "positions")
NUMBER_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(float)", "tensor(double)", "tensor(bool)")
INTEGER_TYPES = ("tensor(int64)", "tensor(int32)")
MAX_TOKENIZER_BYTES = 256 << 20  # the largest real tokenizer.json files are ~20 MB


def guess_role(name: str, onnx_type: str) -> str | None:
    """An input's role from its type and name, or None."""
    if onnx_type == "tensor(string)":
        return "text"
    n = name.lower()
    if "mask" in n:
        return "mask"
    if "type" in n or "segment" in n:
        return "type_ids"
    if "position" in n or n in ("pos", "pos_ids"):
        return "positions"
    if "ids" in n or "token" in n or n in ("input", "inputs", "x", "input_0", "src", "words"):
        return "ids"
    return None


def text_inputs(inputs: list[dict], model: Path, tokenizer: Path | None, roles: dict | None = None) -> dict | None:
    """What `inspect` says of a text model, or None when the model does not read text.

    `inputs`: the model's inputs as inspect lists them (name, shape, dtype such as "int64",
    "string"); `tokenizer`: the spec's input.tokenizer, if any; `roles`: the spec's
    input.roles. A model reads text when an input takes strings, or takes whole numbers (int64,
    int32) as token ids. The answer: {"inputs": [{name, dtype, role}], "reads": "raw text" |
    "token ids", "tokenizer": {path, from: "input.tokenizer" | "beside the model", kind,
    vocab_size} | None, "tokenizer_error": str (set when one is named or found but cannot be
    read), "needs_tokenizer": bool}."""
    roles = roles or {}
    listed = []
    for i in inputs:
        onnx_type = f"tensor({i.get('dtype', '')})"
        role = roles.get(i["name"]) or guess_role(i["name"], onnx_type)
        if role in TOKEN_ROLES and onnx_type not in NUMBER_TYPES:
            role = None
        listed.append({"name": i["name"], "dtype": i.get("dtype", ""), "role": role, "type": onnx_type})
    strings = [i for i in listed if i["role"] == "text"]
    ids = [i for i in listed if i["role"] == "ids" and (i["type"] in INTEGER_TYPES or i["name"] in roles)]
    if not strings and not ids:
        return None
    for i in listed:
        del i["type"]
    needs = bool(ids) or any(i["role"] in TOKEN_ROLES for i in listed)
    out = {"inputs": listed, "reads": "token ids" if needs else "raw text", "tokenizer": None,
           "needs_tokenizer": False}
    if not needs:
        return out
    beside = model.parent / "tokenizer.json"
    path, source = (tokenizer, "input.tokenizer") if tokenizer is not None else (beside, "beside the model")
    if tokenizer is None and not beside.is_file():
        out["needs_tokenizer"] = True
        return out
    try:
        out["tokenizer"] = {"path": str(path), "from": source, **describe_tokenizer(path)}
    except ValueError as exc:
        out["tokenizer_error"] = str(exc)
        out["needs_tokenizer"] = True
    return out


def describe_tokenizer(path: Path) -> dict:
    """{kind: "WordPiece" | "BPE" | "Unigram" | "WordLevel" | …, vocab_size} read off a
    tokenizer.json as JSON (without loading it); ValueError with a message when it is not one."""
    try:
        text = read_regular_text(path, MAX_TOKENIZER_BYTES)
    except FileNotFoundError:
        raise ValueError(f"no tokenizer file at {path}") from None
    except (NotRegularFile, FileTooLarge, OSError) as exc:
        raise ValueError(f"cannot read the tokenizer {path.name}: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not a tokenizer.json (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{path.name} is not a tokenizer.json (not JSON)") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise ValueError(f"{path.name} is not a tokenizer.json of Hugging Face tokenizers (no model)")
    kind = model.get("type") or ("WordPiece" if "continuing_subword_prefix" in model else
                                 "BPE" if "merges" in model else "?")
    vocab = model.get("vocab")
    size = len(vocab) if isinstance(vocab, (dict, list)) else 0
    added = data.get("added_tokens") or []
    if isinstance(vocab, dict) and isinstance(added, list):
        size += sum(1 for t in added if isinstance(t, dict) and t.get("content") not in vocab)
    return {"kind": str(kind), "vocab_size": size}


def tokenizer_words(text: dict | None) -> str:
    """One line: 'tokenizer: tokenizer.json (WordPiece, 2,000 tokens)', 'reads raw text', or
    'takes token ids: no tokenizer found'; '' when the model reads no text."""
    if not text:
        return ""
    tok = text.get("tokenizer")
    if tok:
        return f"tokenizer: {Path(tok['path']).name} ({tok['kind']}, {tok['vocab_size']:,} tokens)"
    if text.get("reads") == "raw text":
        return "reads raw text"
    if text.get("tokenizer_error"):
        return f"takes token ids: {text['tokenizer_error']}"
    return "takes token ids: no tokenizer found"
