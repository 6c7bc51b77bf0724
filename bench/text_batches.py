"""What batching texts by length saves: training steps of a transformer student on real texts,
batched as the engine does (by length, each batch cut to its longest text) against every batch
padded to max_length; one JSON object on the last line.

    .venv/bin/python bench/text_batches.py [--texts 4000] [--max-length 128] [--threads 2] [--rounds 3]

The texts are Debian's package descriptions (`apt-cache dumpavail`, the long description too),
tokenised by a BPE tokenizer trained on them (engine/tokenizer.py). Both ways run the same
model, optimiser and batches of the same samples (`engine.data.feed.Feed`; the padded way is
the same feed without the parts' pad id), `--rounds` times alternated; the medians count. Keys:
`tokens_mean`, `padded_samples_per_s`, `bucketed_samples_per_s`, `speedup` (bucketed ÷ padded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.data import Part  # noqa: E402
from engine.data.feed import Feed  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.spec import TransformerArch  # noqa: E402
from engine.tokenizer import train_tokenizer  # noqa: E402


def descriptions(n: int) -> list[str]:
    """The first n distinct package descriptions (short and long text) apt knows."""
    out = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    texts, seen = [], set()
    for stanza in out.split("\n\n"):
        lines, field, text = stanza.splitlines(), None, []
        for line in lines:
            if line.startswith((" ", "\t")):
                if field == "Description" and line.strip() != ".":
                    text.append(line.strip())
                continue
            field, _, value = line.partition(":")
            if field == "Description":
                text.append(value.strip())
        joined = " ".join(text)
        if joined and joined not in seen:
            seen.add(joined)
            texts.append(joined)
            if len(texts) == n:
                break
    return texts


def epoch(model, feed: Feed, order: torch.Tensor, optimizer) -> float:
    started = time.perf_counter()
    for _, _, x in feed.batches(order):
        optimizer.zero_grad(set_to_none=True)
        loss = model(x).logsumexp(1).mean()
        loss.backward()
        optimizer.step()
    return len(order) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=4000)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    texts = descriptions(args.texts)
    tok = train_tokenizer(texts, "bpe", 4000)
    ids = tok.padded(texts, args.max_length, 0, dtype=np.float32)
    lengths = (ids != 0).sum(1)
    arch = TransformerArch(vocab_size=tok.vocab_size, max_length=args.max_length, dim=128, depth=2, heads=4)
    model = build_model(arch, (args.max_length,), 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ways = {"bucketed": Feed(Part(ids, None, pad_id=0), torch.device("cpu"), args.batch),
            "padded": Feed(Part(ids, None), torch.device("cpu"), args.batch)}
    rates: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(args.rounds):
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(r))
        for name, feed in ways.items():
            rates[name].append(epoch(model, feed, order, optimizer))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(json.dumps({"texts": len(texts), "max_length": args.max_length, "batch": args.batch,
                      "threads": args.threads, "tokens_mean": round(float(lengths.mean()), 1),
                      "tokens_p95": int(np.percentile(lengths, 95)),
                      "padded_samples_per_s": round(med["padded"], 1),
                      "bucketed_samples_per_s": round(med["bucketed"], 1),
                      "speedup": round(med["bucketed"] / med["padded"], 2), "rounds": rates}))


if __name__ == "__main__":
    main()
