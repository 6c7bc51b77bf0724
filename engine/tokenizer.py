"""Tokenizers: Hugging Face `tokenizers` files (`tokenizer.json`), read or trained, and texts
turned into token ids. Torch-free.

A `tokenizer.json` is data (a vocabulary, merges, normalisation rules), never code, so one from
elsewhere is safe to read; its size is checked before it is parsed. The student's tokenizer,
when the spec gives none, is trained on the training texts (Sennrich et al., "Neural Machine
Translation of Rare Words with Subword Units", ACL 2016, for byte-pair encoding as GPT-2 applies
it to bytes; Wu et al. 2016 / BERT for WordPiece) with padding as id 0, and saved with the run
and beside the exported model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.regular_files import FileTooLarge, NotRegularFile, read_regular_text
from engine.text_roles import MAX_TOKENIZER_BYTES

PAD_NAMES = ("[PAD]", "<pad>", "<|pad|>", "[pad]", "<PAD>")
SPECIALS = {"bpe": ["[PAD]", "[UNK]"], "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]}


@dataclass
class TextTokenizer:
    """A tokenizer with what the engine needs to know of it."""

    tokenizer: object  # tokenizers.Tokenizer
    json: str  # its file's text: saved with the run and the exported model
    pad_id: int | None  # the id of padding, None when it has no padding token
    source: str  # where it came from, for the log: a path, or "trained on N texts"

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Each text's token ids (special tokens as the tokenizer adds them), cut at max_length."""
        tok = self.tokenizer
        tok.no_padding()
        tok.enable_truncation(max_length)
        return [e.ids for e in tok.encode_batch(list(texts))]

    def padded(self, texts: list[str], max_length: int, pad_id: int, dtype=np.int64) -> np.ndarray:
        """Token ids [len(texts), max_length], right-padded with pad_id."""
        ids = self.encode(texts, max_length)
        out = np.full((len(ids), max_length), pad_id, dtype=dtype)
        for row, seq in zip(out, ids):
            row[:len(seq)] = seq
        return out


def read_tokenizer(path: Path, where: str, whose: str) -> TextTokenizer:
    """The tokenizer.json at `path`, or InputError naming `whose` tokenizer and the file."""
    from tokenizers import Tokenizer

    try:
        text = read_regular_text(path, MAX_TOKENIZER_BYTES)
    except FileNotFoundError:
        raise InputError.one(where, f"{whose}: no tokenizer file at {path}",
                             "give the tokenizer.json saved with the model (Hugging Face tokenizers "
                             "format), or put it beside the model file", "missing_file") from None
    except (NotRegularFile, FileTooLarge, OSError) as exc:
        raise InputError.one(where, f"{whose}: cannot read the tokenizer {path.name}: {exc}",
                             "give a tokenizer.json file saved on disk") from None
    except UnicodeDecodeError:
        raise InputError.one(where, f"{whose}: {path.name} is not a tokenizer.json (not UTF-8 text)",
                             "give the tokenizer.json saved with the model (tokenizer.save(...)); "
                             "a vocab.txt or a SentencePiece .model file must be converted first") from None
    try:
        tok = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises its own exception type for any bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError.one(where, f"{whose}: {path.name} is not a tokenizer this build reads ({first})",
                             "give the tokenizer.json of Hugging Face tokenizers (tokenizer.save(...) "
                             "or save_pretrained writes one)") from None
    return TextTokenizer(tok, text, pad_of(tok), str(path))


def pad_of(tok) -> int | None:
    """The padding id the tokenizer declares (its padding settings, else a [PAD]-like token)."""
    padding = tok.padding
    if padding and padding.get("pad_id") is not None and padding.get("pad_token"):
        return int(padding["pad_id"])
    for name in PAD_NAMES:
        got = tok.token_to_id(name)
        if got is not None:
            return int(got)
    return None


def train_tokenizer(texts: list[str], kind: str, vocab_size: int) -> TextTokenizer:
    """A BPE (byte-level) or WordPiece (lower-cased, BERT's) tokenizer trained on `texts`,
    padding as id 0. Deterministic for the same texts in the same order."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = SPECIALS[kind]
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        # tokenizers' trainer creates the word-continuing tokens ("##e") in hash-map order, so their
        # ids, and the merges that tie on counts, change from one training to the next
        # (huggingface/tokenizers#1794): they are given first, sorted, as tokens of their own
        inner: set[str] = set()
        for t in texts:
            for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(t)):
                inner.update(word[1:])
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, show_progress=False,
                                            special_tokens=specials + ["##" + c for c in sorted(inner)])
    tok.train_from_iterator(texts, trainer=trainer)
    if kind == "wordpiece":  # the "##" tokens stay in the vocabulary, as ordinary tokens
        saved = json.loads(tok.to_str())
        saved["added_tokens"] = [a for a in saved["added_tokens"] if a["content"] in specials]
        tok = Tokenizer.from_str(json.dumps(saved))
    return TextTokenizer(tok, tok.to_str(), 0, f"trained on {len(texts):,} texts ({kind})")
