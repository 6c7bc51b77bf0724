"""Text teachers (engine/text_teachers.py): real ONNX files built here, a skl2onnx TF-IDF pipeline
that takes the raw strings and a torch model that takes token ids of its own tokenizer; and the
spec's checks of text settings (engine/spec.py text_problems)."""

import json
import shutil

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import InputError
from engine.model_files import read_onnx
from engine.spec import parse_spec
from engine.teacher_base import missing_locales
from engine.teachers import load_teachers
from tests.helpers import TEXT_CLASSES, labelled_texts, tfidf_teacher, token_ids_teacher, write_jsonl

ROWS = labelled_texts(12)
TEXTS = np.asarray([t for t, _ in ROWS], dtype=object)
STUDENT = {"kind": "transformer", "vocab_size": 512, "max_length": 32, "dim": 16, "depth": 1, "heads": 2}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The teachers' files, built once: a TF-IDF pipeline (food, tech), a token-ids model with
    three inputs and its tokenizer.json beside it (sport, food), the same model with an input
    named `foo`, and one without a tokenizer."""
    root = tmp_path_factory.mktemp("teachers")
    pipe = tfidf_teacher(root / "tfidf.onnx", ROWS, ["food", "tech"])
    ids_path, ids_tok = token_ids_teacher(root / "bag", ROWS, ["sport", "food"])
    foo_path, _ = token_ids_teacher(root / "foo", ROWS, ["sport", "food"], names=("foo", "attention_mask"),
                                    epochs=2)
    bare = root / "bare"
    bare.mkdir()
    shutil.copy(ids_path, bare / "model.onnx")
    return {"root": root, "pipe": pipe, "tfidf": root / "tfidf.onnx", "ids": ids_path, "ids_tok": ids_tok,
            "foo": foo_path, "bare": bare / "model.onnx"}


def text_spec(tmp_path, teachers: list[dict], data: dict | None = None, student: dict | None = None) -> dict:
    path = write_jsonl(tmp_path / "texts.jsonl", ROWS)
    return {"schema_version": 1, "name": "texts", "classes": TEXT_CLASSES,
            "data": {"format": "text", "path": str(path), "label_column": "label", "vocab_size": 300,
                     "max_length": 32, **(data or {})},
            "teachers": teachers, "student": {"architecture": dict(student or STUDENT)}}


def teacher(name, path, classes, **more) -> dict:
    return {"name": name, "path": str(path), "classes": classes, **more}


def loaded(spec_dict):
    spec = parse_spec(spec_dict)
    return load_teachers(spec, TEXTS[:8], threads=1)


def test_a_skl2onnx_pipeline_reads_the_raw_strings(tmp_path, built):
    (t,) = loaded(text_spec(tmp_path, [teacher("tfidf", built["tfidf"], ["food", "tech"])]))
    assert t.adapter.roles == {"text": "text"} and t.adapter.tokenizer is None
    assert t.outputs == "probabilities"  # read off the sample batch
    assert t.student_index.tolist() == [1, 2]
    got = t.predict(TEXTS, batch_size=7)  # several batches, the last one short
    expected = np.log(np.clip(built["pipe"].predict_proba(list(TEXTS)), 1e-8, None))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    own = np.isin([y for _, y in ROWS], ["food", "tech"])
    truth = np.asarray([["food", "tech"].index(y) for _, y in ROWS if y in ("food", "tech")])
    assert (got[own].argmax(1) == truth).mean() > 0.9
    if missing_locales(read_onnx(built["tfidf"], "x")):  # en_US.UTF-8 absent: it runs with C.UTF-8, said
        assert any("C.UTF-8" in f.message for f in t.findings)


def test_a_token_ids_teacher_reads_the_texts_through_its_own_tokenizer(tmp_path, built):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    spec = text_spec(tmp_path, [teacher("bag", built["ids"], ["sport", "food"])])
    (t,) = loaded(spec)
    assert t.adapter.roles == {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "type_ids"}
    assert t.outputs == "logits" and any("tokenizer.json" in f.message for f in t.findings)
    data = load_dataset(parse_spec(spec), tmp_path / "cache")
    assert t.adapter.tokenizer.json != data.text.json  # the teacher's WordPiece, not the student's BPE
    assert t.adapter.tokenizer.json == built["ids_tok"].json
    got = t.predict(TEXTS, batch_size=5)

    # the same texts, tokenized here with the teacher's tokenizer.json and run in onnxruntime
    tok = Tokenizer.from_file(str(built["ids"].parent / "tokenizer.json"))
    enc = [e.ids for e in tok.encode_batch(list(TEXTS))]
    width = max(map(len, enc))
    ids = np.zeros((len(enc), width), np.int64)
    for row, seq in zip(ids, enc):
        row[:len(seq)] = seq
    session = ort.InferenceSession(str(built["ids"]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64),
                                  "token_type_ids": np.zeros_like(ids)})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    own = np.isin([y for _, y in ROWS], ["sport", "food"])
    truth = np.asarray([["sport", "food"].index(y) for _, y in ROWS if y in ("sport", "food")])
    assert (got[own].argmax(1) == truth).mean() > 0.9


def test_input_tokenizer_and_max_length_are_used(tmp_path, built):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(built["bare"], moved / "model.onnx")
    shutil.copy(built["ids"].parent / "tokenizer.json", moved / "its-tokenizer.json")
    spec = text_spec(tmp_path, [teacher("bag", moved / "model.onnx", ["sport", "food"],
                                        input={"tokenizer": str(moved / "its-tokenizer.json"), "max_length": 4})])
    (t,) = loaded(spec)
    feeds = t.adapter(TEXTS[:6])
    assert feeds["input_ids"].dtype == np.int64 and feeds["input_ids"].shape[1] == 4  # cut at max_length
    expected = built["ids_tok"].encode(list(TEXTS[:6]), 4)
    assert feeds["input_ids"].tolist() == expected
    assert (feeds["token_type_ids"] == 0).all() and (feeds["attention_mask"] == 1).all()


def test_an_input_whose_role_cannot_be_read_is_named_and_roles_fix_it(tmp_path, built):
    spec = text_spec(tmp_path, [teacher("odd", built["foo"], ["sport", "food"])])
    with pytest.raises(InputError) as info:
        loaded(spec)
    p = info.value.problems[0]
    assert p.path == "teachers[0].input.roles"
    assert "teacher 'odd'" in p.message and "foo" in p.message and "attention_mask" not in p.message
    assert '{"foo": "ids"}' in p.hint
    spec["teachers"][0]["input"] = {"roles": {"foo": "ids"}}
    (t,) = loaded(spec)
    assert t.adapter.roles == {"foo": "ids", "attention_mask": "mask"}
    assert t.predict(TEXTS[:10]).shape == (10, 2)
    spec["teachers"][0]["input"] = {"roles": {"bar": "ids"}}  # an input the model lacks
    with pytest.raises(InputError) as info:
        loaded(spec)
    assert "no input 'bar'" in info.value.problems[0].message and "foo" in info.value.problems[0].message


def test_a_token_ids_teacher_without_a_tokenizer_is_told_so(tmp_path, built):
    spec = text_spec(tmp_path, [teacher("bare", built["bare"], ["sport", "food"])])
    with pytest.raises(InputError) as info:
        loaded(spec)
    p = info.value.problems[0]
    assert p.path == "teachers[0].input.tokenizer"
    assert "teacher 'bare'" in p.message and "no tokenizer" in p.message and "tokenizer.json" in p.hint
    spec["teachers"][0]["input"] = {"tokenizer": str(tmp_path / "absent.json")}
    with pytest.raises(InputError) as info:
        loaded(spec)
    assert "teacher 'bare'" in info.value.problems[0].message and "absent.json" in info.value.problems[0].message


def test_every_teacher_problem_is_told_at_once(tmp_path, built):
    spec = text_spec(tmp_path, [teacher("bare", built["bare"], ["sport", "food"]),
                                teacher("odd", built["foo"], ["sport", "food"]),
                                teacher("tfidf", built["tfidf"], ["food", "tech"])])
    with pytest.raises(InputError) as info:
        loaded(spec)
    assert [p.path for p in info.value.problems] == ["teachers[0].input.tokenizer", "teachers[1].input.roles"]


def test_a_zoo_teacher_on_text_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    from engine.models import build_model

    arch = {"kind": "transformer", "vocab_size": 64, "max_length": 32, "dim": 8, "depth": 1, "heads": 2}
    spec = text_spec(tmp_path, [teacher("zoo", tmp_path / "zoo.safetensors", ["sport", "food"], architecture=arch)])
    model = build_model(parse_spec(spec).teachers[0].architecture, (32,), 2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)},
              str(tmp_path / "zoo.safetensors"))
    with pytest.raises(InputError) as info:
        loaded(spec)
    p = info.value.problems[0]
    assert p.path == "teachers[0].path" and "teacher 'zoo'" in p.message and "ONNX" in p.message


def test_token_inputs_without_one_of_token_ids_are_refused(tmp_path, built):
    spec = text_spec(tmp_path, [teacher("bag", built["ids"], ["sport", "food"],
                                        input={"roles": {"input_ids": "positions"}})])
    with pytest.raises(InputError) as info:
        loaded(spec)
    p = info.value.problems[0]
    assert p.path == "teachers[0].input.roles" and "teacher 'bag'" in p.message and "no input of token ids" in p.message


# ── the spec's checks ─────────────────────────────────────────────────────────────────────


def problems_of(spec_dict) -> list:
    with pytest.raises(InputError) as info:
        parse_spec(spec_dict)
    return info.value.problems


def test_image_fields_on_a_text_teacher_are_refused(tmp_path):
    spec = text_spec(tmp_path, [teacher("t", tmp_path / "t.onnx", ["sport"], input={"scale": 0.5})])
    (p,) = problems_of(spec)
    assert p.path == "teachers[0].input.scale" and "teacher 't'" in p.message and "texts" in p.message
    spec["teachers"][0]["input"] = {"mean": [0.5], "std": [0.2]}
    assert problems_of(spec)[0].path == "teachers[0].input.mean"


def test_text_fields_on_image_data_are_refused(demo_dict, tmp_path):
    demo_dict["teachers"][0]["input"] = {"tokenizer": str(tmp_path / "tokenizer.json")}
    (p,) = problems_of(demo_dict)
    assert p.path == "teachers[0].input.tokenizer" and "for text" in p.message
    demo_dict["teachers"][0]["input"] = {"roles": {"x": "ids"}}
    assert problems_of(demo_dict)[0].path == "teachers[0].input.roles"


def test_a_student_that_is_no_transformer_is_refused_for_text(tmp_path):
    spec = text_spec(tmp_path, [teacher("t", tmp_path / "t.onnx", ["sport"])],
                     student={"kind": "mlp", "width": 32})
    (p,) = problems_of(spec)
    assert p.path == "student.architecture.kind" and "transformer" in p.hint
    spec = text_spec(tmp_path, [teacher("t", tmp_path / "t.onnx", ["sport"])],
                     student={**STUDENT, "max_length": 16})
    (p,) = problems_of(spec)
    assert p.path == "student.architecture.max_length" and "32" in p.message


def test_a_text_spec_round_trips(tmp_path):
    spec = text_spec(tmp_path, [teacher("t", tmp_path / "t.onnx", ["sport"],
                                        input={"tokenizer": "tok.json", "max_length": 64, "roles": {"a": "ids"}})])
    parsed = parse_spec(spec)
    again = parse_spec(json.loads(parsed.to_json()))
    assert again == parsed and again.teachers[0].input.roles == {"a": "ids"}


def test_the_student_masks_the_padding_of_a_given_tokenizer(tmp_path, built):
    """A given tokenizer.json that pads with id 1 (RoBERTa's <pad>): a student masking id 0 would
    read the padding as text and mask a real token; refused before training, the fix named."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from engine.preflight import prepare

    words = sorted({w for t in TEXTS for w in t.split()})
    tok = Tokenizer(models.WordLevel({"<s>": 0, "<pad>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}},
                                     unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(tmp_path / "tokenizer.json"))
    spec = text_spec(tmp_path, [teacher("tfidf", built["tfidf"], ["food", "tech"])],
                     data={"tokenizer": str(tmp_path / "tokenizer.json")})
    with pytest.raises(InputError) as info:
        prepare(parse_spec(spec), threads=1, cache_dir=tmp_path / "cache")
    (p,) = info.value.problems
    assert p.path == "student.architecture.pad_id" and "padded with id 1" in p.message
    assert p.hint == "set student.architecture.pad_id to 1"
    spec["student"]["architecture"]["pad_id"] = 1
    prepared = prepare(parse_spec(spec), threads=1, cache_dir=tmp_path / "cache")
    assert prepared.data.text.pad_id == 1 and (prepared.data.train.x[:, -1] == 1).any()


def test_a_teacher_of_a_fixed_length_gets_exactly_that_many_tokens(tmp_path, built):
    path, tok = token_ids_teacher(tmp_path / "fixed", ROWS, ["sport", "food"], epochs=2, fixed_length=True)
    spec = text_spec(tmp_path, [teacher("fixed", path, ["sport", "food"])])
    (t,) = loaded(spec)
    feeds = t.adapter(TEXTS[:5])
    assert feeds["input_ids"].shape == (5, 24) and feeds["attention_mask"].shape == (5, 24)
    assert t.predict(TEXTS).shape == (len(TEXTS), 2)
    spec["teachers"][0]["input"] = {"max_length": 32}
    with pytest.raises(InputError) as info:
        loaded(spec)
    p = info.value.problems[0]
    assert p.path == "teachers[0].input.max_length" and "exactly 24 tokens" in p.message


def test_a_layer_of_a_skl2onnx_teacher_can_be_read_for_hints(tmp_path, built):
    """Its layers are read in a session of their own, with the same locale fix as its outputs."""
    import onnx

    (t,) = loaded(text_spec(tmp_path, [teacher("tfidf", built["tfidf"], ["food", "tech"])]))
    model = onnx.load(str(built["tfidf"]))
    layer = next(n.output[0] for n in model.graph.node if n.op_type == "TfIdfVectorizer")
    features = t.features(TEXTS, layer, "strategy.hints[0]", batch_size=7)
    expected = built["pipe"].named_steps["tfidf"].transform(list(TEXTS)).toarray()
    assert features.shape == (len(TEXTS), expected.shape[1]) and (features.sum(1) > 0).all()


def test_the_student_embeds_every_token_of_its_tokenizer(tmp_path, built):
    """Ids the training texts never use (a byte-level BPE's rare bytes, most of a given
    vocabulary) come with new texts: a student embedding fewer tokens would fail on them."""
    from engine.preflight import prepare

    spec = text_spec(tmp_path, [teacher("tfidf", built["tfidf"], ["food", "tech"])],
                     data={"vocab_size": 300}, student={**STUDENT, "vocab_size": 280})
    with pytest.raises(InputError) as info:
        prepare(parse_spec(spec), threads=1, cache_dir=tmp_path / "cache")
    assert len(info.value.problems) == 1, str(info.value)
    (p,) = info.value.problems
    assert p.path == "student.architecture.vocab_size" and "holds 300 tokens" in p.message
    assert p.hint == "set student.architecture.vocab_size to at least 300, or data.vocab_size lower"
    spec["data"]["vocab_size"] = 64  # a byte-level BPE holds its 256 bytes whatever vocab_size says
    spec["student"]["architecture"]["vocab_size"] = 200
    with pytest.raises(InputError) as info:
        prepare(parse_spec(spec), threads=1, cache_dir=tmp_path / "cache")
    assert info.value.problems[0].hint == "set student.architecture.vocab_size to at least 258"
    spec["student"]["architecture"]["vocab_size"] = 258
    assert prepare(parse_spec(spec), threads=1, cache_dir=tmp_path / "cache").data.text.vocab_size == 258
