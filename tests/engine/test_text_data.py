"""Text data: files read (CSV, TSV, JSON Lines, one text per line), the student's tokenizer
(trained, cached, given), the test file read with the training tokenizer, and the length-bucketed
batches of engine/data/feed.py. Real files in tmp_path, the real `tokenizers`."""

import json

import numpy as np
import pytest
import torch

from engine.data import Part, load_dataset
from engine.data.feed import Feed
from engine.data.text import open_text, student_tokenizer
from engine.data.text_files import read_texts
from engine.errors import InputError
from engine.spec import TextData, parse_spec
from engine.tokenizer import read_tokenizer, train_tokenizer
from tests.helpers import TEXT_CLASSES as CLASSES
from tests.helpers import labelled_texts as labelled
from tests.helpers import write_jsonl


def write_csv(path, rows, delimiter=","):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


# ── reading files ─────────────────────────────────────────────────────────────────────────


def test_csv_with_labels_and_a_quoted_comma(tmp_path):
    rows = [("Hello, world", "tech"), ('She said "fine"', "food"), ("Plain text", "sport")]
    texts, labels, blank = read_texts(write_csv(tmp_path / "a.csv", rows), "text", "label", "data.path")
    assert texts == [t for t, _ in rows] and labels == [y for _, y in rows] and blank == 0


def test_tsv_is_read_by_tab(tmp_path):
    rows = [("one, two, three", "sport"), ("four; five", "food")]
    texts, labels, _ = read_texts(write_csv(tmp_path / "a.tsv", rows, "\t"), "text", "label", "data.path")
    assert texts == ["one, two, three", "four; five"] and labels == ["sport", "food"]


def test_csv_without_labels_and_blank_cells_counted(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,text\n1,first text\n2,\n3,   \n\n4,last text\n", encoding="utf-8")
    texts, labels, blank = read_texts(path, "text", None, "data.path")
    assert texts == ["first text", "last text"] and labels is None
    assert blank == 2  # the empty and the blank cell; the empty row is no row at all


def test_jsonl_with_and_without_labels_and_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "alpha", "label": "food"}\n\n   \n{"text": "beta", "label": "tech"}\n'
                    '{"text": "", "label": "tech"}\n', encoding="utf-8")
    texts, labels, blank = read_texts(path, "text", "label", "data.path")
    assert texts == ["alpha", "beta"] and labels == ["food", "tech"] and blank == 1
    texts, labels, _ = read_texts(path, "text", None, "data.path")
    assert texts == ["alpha", "beta"] and labels is None


def test_txt_is_one_text_per_line_and_holds_no_labels(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first line\n\nsecond line\r\n  \nthird line", encoding="utf-8")
    texts, labels, blank = read_texts(path, "text", None, "data.path")
    assert texts == ["first line", "second line", "third line"] and labels is None and blank == 2
    with pytest.raises(InputError) as info:
        read_texts(path, "text", "label", "data.path")
    assert info.value.problems[0].path == "data.label_column"
    assert "holds no labels" in info.value.problems[0].message


def test_a_missing_csv_column_is_named_with_the_columns_there(tmp_path):
    path = write_csv(tmp_path / "a.csv", [("x", "food")])
    with pytest.raises(InputError) as info:
        read_texts(path, "body", "label", "data.path")
    p = info.value.problems[0]
    assert p.path == "data.text_column" and "'body'" in p.message and "'text'" in p.message
    with pytest.raises(InputError) as info:
        read_texts(path, "text", "category", "data.path")
    p = info.value.problems[0]
    assert p.path == "data.label_column" and "'category'" in p.message and "'label'" in p.message


def test_a_missing_jsonl_key_is_named_with_its_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "ok", "label": "food"}\n{"body": "no text key", "label": "food"}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_texts(path, "text", "label", "data.path")
    p = info.value.problems[0]
    assert p.path == "data.text_column" and "line 2" in p.message and "'text'" in p.message and "'body'" in p.message
    path.write_text('{"text": "ok", "label": "food"}\n{"text": "no label"}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_texts(path, "text", "label", "data.path")
    p = info.value.problems[0]
    assert p.path == "data.label_column" and "line 2" in p.message and "'label'" in p.message


def test_latin1_file_names_the_file_line_and_the_iconv_fix(tmp_path):
    path = tmp_path / "menu.csv"
    path.write_bytes("text,label\nplain line,food\ncaf\u00e9 cr\u00e8me br\u00fbl\u00e9e,food\n".encode("latin-1"))
    with pytest.raises(InputError) as info:
        read_texts(path, "text", "label", "data.path")
    p = info.value.problems[0]
    assert p.path == "data.path"
    assert "menu.csv is not UTF-8" in p.message and "line 3" in p.message and "0xe9" in p.message
    assert "iconv -f WINDOWS-1252 -t UTF-8 menu.csv" in p.hint


def test_a_utf8_bom_is_accepted_and_not_part_of_the_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\nna\xc3\xafve caf\xc3\xa9,food\n")
    texts, labels, _ = read_texts(path, "text", "label", "data.path")
    assert texts == ["na\u00efve caf\u00e9"] and labels == ["food"]
    jl = tmp_path / "bom.jsonl"
    jl.write_bytes(b'\xef\xbb\xbf{"text": "first", "label": "tech"}\n')
    assert read_texts(jl, "text", "label", "data.path")[0] == ["first"]


def test_a_bad_byte_after_a_bom_is_told_where_it_is(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbffirst\nsecond\nthird caf\xe9\n")
    with pytest.raises(InputError) as info:
        read_texts(path, "text", None, "data.path")
    message, at = info.value.problems[0].message, path.read_bytes().index(b"\xe9")
    assert "byte 0xe9 on line 3" in message and f"position {at}" in message


def test_a_utf16_file_is_told_to_be_converted_from_utf16(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("one text\nanother\n".encode("utf-16"))
    with pytest.raises(InputError) as info:
        read_texts(path, "text", None, "data.path")
    p = info.value.problems[0]
    assert "(UTF-16)" in p.message and "iconv -f UTF-16 -t UTF-8 notes.txt" in p.hint


def test_texts_may_hold_characters_str_splitlines_breaks_at(tmp_path):
    """A JSON string may hold U+2028, U+0085 or a form feed unescaped (json.dumps(...,
    ensure_ascii=False) writes them so): they are part of the text, not line breaks."""
    odd = ["one\u2028text", "next\x85line", "page\x0cbreak", "para\u2029graph"]
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": "tech"}, ensure_ascii=False) + "\n" for t in odd),
                    encoding="utf-8")
    texts, labels, blank = read_texts(path, "text", "label", "data.path")
    assert texts == odd and labels == ["tech"] * 4 and blank == 0
    txt = tmp_path / "odd.txt"
    txt.write_text("\n".join(odd) + "\r\nwindows\rold mac\n", encoding="utf-8", newline="")
    assert read_texts(txt, "text", None, "data.path")[0] == odd + ["windows", "old mac"]
    assert read_texts(txt, "text", None, "data.path")[2] == 0  # the last line break ends a line


def test_labels_are_read_by_class_name(tmp_path):
    rows = labelled(6)
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    src = open_text(TextData(path=path, label_column="label", vocab_size=200, max_length=16), CLASSES)
    assert src.labels.tolist() == [CLASSES.index(y) for _, y in rows]
    assert list(src.texts(np.arange(3))) == [t for t, _ in rows[:3]]
    bad = write_jsonl(tmp_path / "b.jsonl", rows[:2] + [("a text of no class", "politics")])
    with pytest.raises(InputError) as info:
        open_text(TextData(path=bad, label_column="label", vocab_size=200, max_length=16), CLASSES)
    assert "politics" in str(info.value.problems[0])


# ── the student's tokenizer ───────────────────────────────────────────────────────────────


def test_a_trained_tokenizer_is_deterministic(tmp_path):
    texts = [t for t, _ in labelled(12)]
    a = train_tokenizer(texts, "bpe", 300)
    b = train_tokenizer(texts, "bpe", 300)
    assert a.json == b.json and a.pad_id == 0
    assert a.encode(texts, 32) == b.encode(texts, 32)
    w = train_tokenizer(texts, "wordpiece", 300)
    assert w.pad_id == 0 and w.tokenizer.id_to_token(0) == "[PAD]"
    assert w.encode(texts, 32) == train_tokenizer(texts, "wordpiece", 300).encode(texts, 32)


def test_the_trained_tokenizer_is_cached_and_reused(tmp_path):
    texts = [t for t, _ in labelled(12)]
    src = TextData(path=tmp_path / "unused.jsonl", vocab_size=300)
    cache = tmp_path / "cache"
    first = student_tokenizer(src, texts, cache)
    saved = list((cache / "tokenizers").glob("*.json"))
    assert len(saved) == 1 and saved[0].read_text(encoding="utf-8") == first.json
    second = student_tokenizer(src, texts, cache)
    assert "from the cache" in second.source and second.json == first.json
    assert second.encode(texts, 32) == first.encode(texts, 32)
    other = student_tokenizer(src, texts + ["one more text"], cache)  # other texts: another tokenizer
    assert "from the cache" not in other.source and len(list((cache / "tokenizers").glob("*.json"))) == 2
    saved[0].write_text("{damaged", encoding="utf-8")  # a damaged cache entry is trained again
    again = student_tokenizer(src, texts, cache)
    assert "from the cache" not in again.source and again.json == first.json
    assert saved[0].read_text(encoding="utf-8") == first.json


def test_a_given_tokenizer_json_is_read(tmp_path):
    rows = labelled(6)
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    tok = train_tokenizer(["completely different words here", "zebra quartz fjord"] * 3, "wordpiece", 120)
    (tmp_path / "tokenizer.json").write_text(tok.json, encoding="utf-8")
    src = open_text(TextData(path=path, label_column="label", tokenizer=tmp_path / "tokenizer.json",
                             max_length=16), CLASSES)
    assert src.text.json == tok.json and src.text.pad_id == 0
    expected = tok.padded([t for t, _ in rows], 16, 0)
    assert np.array_equal(src.x.astype(np.int64), expected)


def test_a_tokenizer_without_padding_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"hello": 0, "world": 1, "<unk>": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "nopad.json"))
    path = write_jsonl(tmp_path / "a.jsonl", labelled(2))
    with pytest.raises(InputError) as info:
        open_text(TextData(path=path, label_column="label", tokenizer=tmp_path / "nopad.json"), CLASSES)
    p = info.value.problems[0]
    assert p.path == "data.tokenizer" and "nopad.json" in p.message and "no padding token" in p.message


@pytest.mark.parametrize("content", [b"this is not json", b"\x80\x81\x82 binary", b'{"version": "1.0"}'])
def test_a_tokenizer_file_that_is_not_one_is_refused(tmp_path, content):
    bad = tmp_path / "vocab.json"
    bad.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_tokenizer(bad, "data.tokenizer", "the student's tokenizer")
    p = info.value.problems[0]
    assert p.path == "data.tokenizer" and "vocab.json" in p.message and "tokenizer" in p.hint
    with pytest.raises(InputError) as info:
        read_tokenizer(tmp_path / "absent.json", "data.tokenizer", "the student's tokenizer")
    assert "no tokenizer file" in info.value.problems[0].message


def test_the_test_file_is_read_with_the_training_tokenizer(tmp_path):
    rows = labelled(6)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test_rows = [rows[0], rows[7], ("Unseen words: quokka xylophone", "tech")]
    test = write_jsonl(tmp_path / "test.jsonl", test_rows)
    src = TextData(path=train, label_column="label", test_file=test, vocab_size=200, max_length=24)
    data = load_dataset(_spec_with(src, tmp_path), tmp_path / "cache")
    assert data.test_from == "test.jsonl" and len(data.test) == 3
    assert list(data.test.texts) == [t for t, _ in test_rows]
    assert data.test.y.tolist() == [CLASSES.index(y) for _, y in test_rows]
    expected = data.text.padded([t for t, _ in test_rows], 24, data.text.pad_id)
    assert np.array_equal(data.test.x.astype(np.int64), expected)
    # the same text in the training file has the same ids there
    whole = open_text(src, CLASSES, tmp_path / "cache")
    assert np.array_equal(whole.x[0], data.test.x[0]) and np.array_equal(whole.x[7], data.test.x[1])
    assert data.text.json == whole.text.json  # the cached one, not one trained on the test file


def _spec_with(data: TextData, tmp_path):
    """A spec around `data` (a teacher file that is never loaded: load_dataset reads the data alone)."""
    return parse_spec({
        "schema_version": 1, "name": "t", "classes": CLASSES, "data": json.loads(data.model_dump_json()),
        "teachers": [{"name": "t", "path": str(tmp_path / "never.onnx"), "classes": CLASSES}],
        "student": {"architecture": {"kind": "transformer", "vocab_size": 256, "max_length": data.max_length,
                                     "dim": 16, "depth": 1, "heads": 2}},
    })


# ── length-bucketed batches ───────────────────────────────────────────────────────────────


def text_part(n: int = 230, width: int = 40, pad: int = 0, seed: int = 0) -> Part:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, n)
    x = np.full((n, width), pad, np.float32)
    for row, k in zip(x, lengths):
        row[:k] = rng.integers(1, 99, k)
    texts = np.asarray([f"text {i}" for i in range(n)], dtype=object)
    return Part(x, rng.integers(0, 3, n), None, texts, pad)


def cut_width(longest: int, width: int) -> int:
    """A batch's width: its longest text rounded up to a multiple of 8, at most the data's."""
    return min(width, -(-longest // 8) * 8)


def test_bucketed_batches_hold_every_sample_once_cut_to_their_longest(tmp_path):
    part = text_part()
    feed = Feed(part, torch.device("cpu"), batch_size=16)
    assert feed.steps() == -(-230 // 16)
    order = torch.randperm(len(part), generator=torch.Generator().manual_seed(1))
    seen, sizes = [], []
    for b, idx, x in feed.batches(order):
        seen += idx.tolist()
        sizes.append(len(idx))
        rows = part.x[idx.numpy()]
        longest = int((rows != 0).sum(axis=1).max())
        width = cut_width(longest, 40)
        assert x.shape == (len(idx), width), b
        assert np.array_equal(x.numpy(), rows[:, :width])  # the ids themselves, cut
        assert width - longest < 8 and (x[:, longest - 1] != 0).any()  # less than 8 columns of padding alone
    assert sorted(seen) == list(range(len(part)))  # every sample exactly once
    assert len(sizes) == feed.steps() and sizes[:-1] == [16] * (len(sizes) - 1) and sizes[-1] == 230 % 16
    # batches of similar lengths: far less padding than the shuffled order would need
    padded = sum(len(i) * x.shape[1] for _, i, x in feed.batches(order))
    plain = sum(16 * cut_width(int((part.x[order[i:i + 16].numpy()] != 0).sum(1).max()), 40)
                for i in range(0, 230, 16))
    assert padded < plain


def test_bucketed_batches_are_the_same_for_the_same_shuffle(tmp_path):
    part = text_part(n=400)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(5))
    first = [idx.tolist() for _, idx, _ in Feed(part, torch.device("cpu"), 8).batches(order)]
    again = Feed(part, torch.device("cpu"), 8)  # a resumed run: a new feed, the same permutation
    assert [idx.tolist() for _, idx, _ in again.batches(order.clone())] == first
    resumed = [(b, idx.tolist()) for b, idx, _ in again.batches(order.clone(), first=20)]
    assert [b for b, _ in resumed] == list(range(20, 50)) and [i for _, i in resumed] == first[20:]
    other = torch.randperm(400, generator=torch.Generator().manual_seed(6))
    assert [idx.tolist() for _, idx, _ in again.batches(other)] != first


def test_evaluation_batches_are_in_order_and_cut(tmp_path):
    part = text_part(n=50)
    feed = Feed(part, torch.device("cpu"), 16)
    got = list(feed.in_order())
    assert torch.cat([i for i, _ in got]).tolist() == list(range(50))
    for idx, x in got:
        assert x.shape[1] == cut_width(int((part.x[idx.numpy()] != 0).sum(1).max()), 40)


def test_a_text_whose_tokens_are_all_padding_still_gets_a_column(tmp_path):
    part = text_part(n=20)
    part.x[:] = 0  # e.g. texts of nothing but characters the tokenizer drops
    feed = Feed(part, torch.device("cpu"), 8)
    for _, idx, x in feed.batches(torch.arange(20)):
        assert x.shape == (len(idx), 8)


def test_a_csv_row_with_more_fields_is_refused_not_cut(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("label,text\npos,Good, really good\nneg,bad\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_texts(path, "text", "label", "data.path")
    assert "1 row has another number of fields than the header's 2 (the first: line 2, 3 fields)" in str(err.value)
    assert "quoted" in err.value.problems[0].hint


def test_a_tsv_text_may_start_with_a_quote(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('text\tlabel\n"the greatest musicians\t1\nit is bad\t0\na "fine" film\t1\n', encoding="utf-8")
    texts, labels, _ = read_texts(path, "text", "label", "data.path")
    assert texts == ['"the greatest musicians', "it is bad", 'a "fine" film'] and labels == ["1", "0", "1"]


def test_jsonl_labels_may_be_numbers_or_booleans_as_json_writes_them(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": true}\n{"text": "c", "label": null}\n',
                    encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_texts(path, "text", "label", "data.path")
    assert "1 texts have no label in 'label' (the first on line 3)" in str(err.value)
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": true}\n', encoding="utf-8")
    assert read_texts(path, "text", "label", "data.path")[1] == ["1", "true"]


def test_hints_and_a_previous_student_are_refused_for_text_in_words():
    spec = {"schema_version": 1, "name": "t", "classes": ["a", "b"],
            "data": {"format": "text", "path": "x.jsonl"},
            "teachers": [{"name": "t", "path": "t.onnx", "classes": ["a", "b"]}],
            "student": {"architecture": {"kind": "transformer"}},
            "strategy": {"hints": [{"teacher": "t", "teacher_layer": "x"}], "previous_student": "old.safetensors"}}
    with pytest.raises(InputError) as err:
        parse_spec(spec)
    paths = [p.path for p in err.value.problems]
    assert "strategy.hints" in paths and "strategy.previous_student" in paths


def test_an_export_never_overwrites_a_tokenizer_it_did_not_write(tmp_path):
    from engine.export_folder import claim

    out = tmp_path / "out"
    out.mkdir()
    (out / "tokenizer.json").write_text("{}", encoding="utf-8")  # the user's own
    with pytest.raises(InputError) as err:
        claim(out, tmp_path / "run", ["student.onnx", "tokenizer.json"])
    assert "tokenizer.json" in str(err.value) and (out / "tokenizer.json").read_text() == "{}"
