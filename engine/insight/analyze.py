"""`distill-engine analyze RUN_DIR`: what the student learned, and from whom (docs/INSIGHTS.md).

Read top to bottom: load the finished run (spec copy, trained student, teachers, data), run
the student and every teacher over one split in batches (progress, cancellable), compute the
figures (engine/insight/metrics.py), explain a few samples (engine/insight/attribution.py),
draw the pictures the model card shows (engine/insight/pictures.py), and write them all into
RUN_DIR/insights/. The app's Insights panel reads those files; it never loads torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.atomic_io import atomic_write, atomic_write_text
from engine.errors import InputError
from engine.insight.folder import InsightsFolder

FORMAT = 1
FOLDER = "insights"
BATCH = 256  # samples per forward pass of the student and of each teacher
SPLITS = ("test", "val", "train")
SPLIT_WORDS = {"test": "the test split", "val": "the validation split", "train": "the training samples"}
PICTURES = {"amalgamation": "amalgamation.png", "confusion": "confusion.png",
            "agreement": "agreement.png", "calibration": "calibration.png"}
THUMBNAIL = 64  # pixels: the longer side of a mistake's thumbnail
SNIPPET = 300  # characters of a text shown with a mistake
ROW_FEATURES = 12  # cells of a table row (or a vector's values) shown with a mistake

Progress = Callable[[str, float], None]


class Cancelled(Exception):
    """The user stopped the analysis; nothing of it was kept."""


def analyze_run(run_dir: Path, split: str = "test", mistakes: int = 24, attributions: int = 6,
                limit: int | None = None, progress: Progress | None = None,
                cancelled: Callable[[], bool] = lambda: False, threads: int | None = None,
                lock: bool = True, fallback: bool = False) -> dict:
    """Analyse a finished run on `split`; returns insights.json's content (also written).

    InputError: not a finished run, an unknown or empty split, teachers that cannot be loaded.
    Cancelled: `cancelled()` became true between two batches."""
    import torch

    from engine.data import load_dataset
    from engine.device import set_threads
    from engine.insight import metrics
    from engine.model_files import load_safetensors, pruned_widths, sha256_of
    from engine.models import fit_weights
    from engine.run_folder import FolderLock, cache_of
    from engine.spec import load_spec
    from engine.teachers import load_teachers
    from engine.text_export import run_tokenizer

    progress = progress or (lambda stage, fraction: None)
    run_dir = Path(run_dir)

    def check() -> None:
        if cancelled():
            raise Cancelled

    # 1. The run: its spec, its student, its data and its teachers
    progress("load", 0.0)
    weights = run_dir / "student.safetensors"
    if not (run_dir / "spec.distill.json").is_file() or not weights.is_file():
        raise InputError.one("RUN_DIR", f"{run_dir} holds no trained student",
                             "analyse a run that completed (its folder has student.safetensors)")
    if split not in SPLITS:
        raise InputError.one("--split", f"unknown split '{split}'", f"use one of: {', '.join(SPLITS)}")
    # no resume or second analysis writes beside this one (a run's own export holds the lock already)
    try:
        held = FolderLock(run_dir, "RUN_DIR") if lock else None
    except OSError as exc:
        raise InputError.one("RUN_DIR", f"cannot write in the run folder {run_dir} ({exc.strerror or exc})",
                             "analyse a run whose folder you can write to (copy the run folder somewhere "
                             "writable)") from None
    out = InsightsFolder(run_dir / FOLDER)
    try:
        threads = set_threads(threads) if threads else torch.get_num_threads()  # as it is (a run's export)
        spec = load_spec(run_dir / "spec.distill.json")
        data = load_dataset(run_tokenizer(spec, run_dir), cache_of(run_dir))
        parts = {"test": data.test, "val": data.val, "train": data.train}
        if fallback and not len(parts[split]):  # the model card's: the first split that has samples
            split = next((s for s in SPLITS if len(parts[s])), split)
        part = parts[split]
        if not len(part):
            sizes = ", ".join(f"{s} {len(p)}" for s, p in zip(SPLITS, (data.test, data.val, data.train)))
            raise InputError.one("--split", f"the run's {split} split holds no samples ({sizes})",
                                 "choose a split that has samples with --split")
        y_all = data.known_train_labels if split == "train" else part.y
        model = fit_weights(spec.student.architecture, data.sample_shape, len(spec.classes), "RUN_DIR",
                            load_safetensors(weights, "RUN_DIR"), weights.name,
                            widths=pruned_widths(weights, "RUN_DIR")).eval()
        teachers = load_teachers(spec, part.for_teachers[:8], threads, data.table)
        folder = out.open()  # the work folder: moved into place only when all of it is written
        check()

        # 2. Every model over the split, in batches
        n = len(part) if limit is None else min(limit, len(part))
        order = np.arange(n)
        y = np.full(n, -1, np.int64) if y_all is None else np.asarray(y_all[:n], np.int64)
        student_probs = np.empty((n, len(spec.classes)), np.float32)
        teacher_probs = [np.empty((n, len(t.student_index)), np.float32) for t in teachers]
        for start in range(0, n, BATCH):
            idx = order[start:start + BATCH]
            with torch.inference_mode():
                logits = model(torch.from_numpy(np.ascontiguousarray(part.x[idx], np.float32)))
            student_probs[idx] = torch.softmax(logits.float(), 1).numpy()
            raw = part.for_teachers[idx]
            for k, t in enumerate(teachers):
                teacher_probs[k][idx] = _softmax(t.predict(raw))
            check()
            progress("predict", 0.05 + 0.6 * min(n, start + BATCH) / n)
        bad = int((~np.isfinite(student_probs).all(axis=1)).sum())
        if bad:
            raise InputError.one("RUN_DIR", f"the student gives NaN or infinite outputs on {bad} of the {n} "
                                 f"samples of {SPLIT_WORDS[split]}", "its weights may be damaged, or the "
                                 "samples far outside what it was trained on: train the run again")

        # 3. The figures
        kind = _kind(spec, data)
        names = _unique([t.name for t in teachers])  # a teacher named "student" is not the student
        classes = [t.student_index.tolist() for t in teachers]
        student_pred = student_probs.argmax(1)
        teacher_pred = [t.student_index[p.argmax(1)] for t, p in zip(teachers, teacher_probs)]
        labelled = y >= 0
        counts = metrics.confusion(y, student_pred, len(spec.classes))
        models = [_model_row("student", "student", list(range(len(spec.classes))), student_probs, y)]
        calibration = [metrics.reliability(student_probs[labelled], y[labelled])]
        for name, t, probs in zip(names, teachers, teacher_probs):
            own = np.isin(y, t.student_index)  # its classes' samples, labelled in its own output order
            local = np.full(len(spec.classes), -1, np.int64)
            local[t.student_index] = np.arange(len(t.student_index))
            local = local[y[own]]
            models.append(_model_row(name, "teacher", t.student_index.tolist(), probs[own], local))
            calibration.append(metrics.reliability(probs[own], local))
        insights = {
            "format": FORMAT,
            "run": {"dir": str(run_dir.resolve()), "name": spec.name,
                    "student": spec.student.architecture.kind, "student_sha256": sha256_of(weights)},
            "split": split, "split_words": SPLIT_WORDS[split], "samples": n, "complete": n == len(part),
            "labelled": int(labelled.sum()),
            "kind": kind, "classes": list(spec.classes),
            "features": _feature_names(data, kind),
            "models": models,
            "amalgamation": metrics.amalgamation(y, student_pred, teacher_pred, classes, names,
                                                 len(spec.classes)),
            "confusion": {"counts": counts.tolist(), "normalized": metrics.normalized(counts).round(4).tolist(),
                          "order": metrics.cluster_order(counts)},
            "agreement": metrics.agreement(teacher_pred + [student_pred], classes
                                           + [list(range(len(spec.classes)))], names + ["student"],
                                           y if labelled.any() else None),
            "calibration": {"edges": calibration[0]["edges"],
                            "models": [{"name": m["name"], **{k: c[k] for k in ("ece", "confidence",
                                                                                  "accuracy", "count")}}
                                       for m, c in zip(models, calibration)]},
            "notes": _notes(n, len(part), labelled, SPLIT_WORDS[split]),
        }
        progress("predict", 0.7)

        # 4. The mistakes, with their thumbnails
        shown = _value_range(part) if kind == "image" else None  # black…white of the thumbnails
        wrong = metrics.mistakes(y, student_probs, mistakes)
        insights["mistakes"] = [_mistake(folder, part, data, kind, int(i), j, y, student_probs, teachers, names,
                                         teacher_probs, shown) for j, i in enumerate(wrong)]
        check()

        # 5. A few samples explained: the most confident mistakes, then correct samples of other classes
        arrays = {"y": y, "sample": order.astype(np.int64), "student_probs": student_probs,
                  **{f"teacher_{k}_probs": p for k, p in enumerate(teacher_probs)}}
        chosen = _explained(wrong, y, student_pred, attributions)
        insights["attribution"] = _attributions(model, part, data, kind, chosen, student_pred, y, teachers,
                                                names, arrays, progress, check, shown)

        # 6. Pictures and files
        progress("pictures", 0.92)
        insights["pictures"] = _pictures(folder, insights)
        atomic_write(folder / "arrays.npz", lambda tmp: _save_npz(tmp, arrays))
        atomic_write_text(folder / "insights.json", json.dumps(insights, indent=1, allow_nan=False))
        check()
        out.publish()
        progress("done", 1.0)
        return insights
    except BaseException:
        out.discard()
        raise
    finally:
        if held is not None:
            held.release()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _unique(names: list[str]) -> list[str]:
    """The teachers' names, each once and none "student" (a spec's are unique, but a previous
    student joins them as "previous student", and a user may name a teacher "student")."""
    seen, out = {"student"}, []
    for name in names:
        shown, k = name, 2
        while shown in seen:
            shown, k = f"{name} ({k})", k + 1
        seen.add(shown)
        out.append(shown)
    return out


def _kind(spec, data) -> str:
    if spec.data.format == "text":
        return "text"
    if data.table is not None:
        return "table"
    return "image" if len(data.sample_shape) == 3 else "vector"


def _feature_names(data, kind: str) -> list[str] | None:
    if kind == "table":
        return list(data.table.feature_names)
    if kind == "vector":
        return [f"x[{i}]" for i in range(int(np.prod(data.sample_shape)))]
    return None


def _model_row(name: str, role: str, classes: list[int], probs: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and ECE of one model on its labelled samples (`y`: indices into `probs`' columns)."""
    from engine.insight.metrics import reliability

    known = y >= 0
    probs, y = probs[known], y[known]
    return {"name": name, "role": role, "classes": classes,
            "accuracy": float((probs.argmax(1) == y).mean()) if len(y) else None,
            "ece": reliability(probs, y)["ece"] if len(y) else None, "samples": int(len(y))}


def _notes(n: int, total: int, labelled: np.ndarray, words: str) -> list[str]:
    notes = [f"{words} has {total} samples; " + ("all were analysed" if n == total else f"the first {n} were analysed")]
    if not labelled.any():
        notes.append(f"{words} has no labels: accuracy, calibration, the confusion matrix and the "
                     "mistakes need labelled samples (set the data's test file to a labelled set)")
    elif not labelled.all():
        notes.append(f"{int(labelled.sum())} of the {n} samples have a label; figures that need one use those")
    return notes


def _value_range(part) -> tuple[float, float]:
    """The lowest and highest value of the images (of up to 4,096 of them): an image's black and
    white, the same for every picture of the analysis (digits are 0…16, photos 0…255)."""
    x = np.asarray(part.stats_sample(), np.float32)
    return float(x.min()), float(x.max())


def _mistake(folder: Path, part, data, kind: str, i: int, j: int, y: np.ndarray, probs: np.ndarray,
             teachers: list, names: list[str], teacher_probs: list[np.ndarray],
             shown: tuple[float, float] | None) -> dict:
    """One wrong answer: what the student said, what each teacher said, and the sample."""
    said = []
    for name, t, tp in zip(names, teachers, teacher_probs):
        knows = bool(np.isin(y[i], t.student_index))
        said.append({"name": name, "says": int(t.student_index[tp[i].argmax()]) if knows else None,
                     "confidence": round(float(tp[i].max()), 4) if knows else None})
    out = {"sample": i, "label": int(y[i]), "predicted": int(probs[i].argmax()),
           "confidence": round(float(probs[i].max()), 4), "teachers": said,
           "thumbnail": None, "text": None, "row": None}
    if kind == "image":
        from engine.insight.attribution import display_image

        name = f"mistakes/{j:03d}.png"
        atomic_write(folder / name, lambda tmp: _thumbnail(display_image(np.asarray(part.x[i]), shown), tmp))
        out["thumbnail"] = name
    elif kind == "text":
        text = str(part.texts[i])
        out["text"] = text if len(text) <= SNIPPET else text[:SNIPPET - 1] + "…"
    elif kind == "table" and part.raw:
        cells = [(c.name, part.raw["numeric"][i, k]) for k, c in enumerate(data.table.numeric)] + \
            [(c.name, part.raw["categorical"][i, k]) for k, c in enumerate(data.table.categorical)]
        order = {c.name: k for k, c in enumerate(data.table.columns)}
        out["row"] = {name: _cell(v) for name, v in sorted(cells, key=lambda c: order[c[0]])[:ROW_FEATURES]}
    else:
        flat = np.asarray(part.x[i], np.float32).reshape(-1)
        names = data.table.feature_names if data.table is not None else [f"x[{k}]" for k in range(len(flat))]
        out["row"] = {names[k]: round(float(flat[k]), 4) for k in range(min(ROW_FEATURES, len(flat)))}
    return out


def _cell(v) -> str | float | None:
    if isinstance(v, (float, np.floating)):
        return None if np.isnan(v) else round(float(v), 4)
    return str(v)


def _thumbnail(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    pic = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
    scale = max(1, THUMBNAIL // max(pic.size))
    pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST) if scale > 1 else pic
    pic.thumbnail((THUMBNAIL * 2, THUMBNAIL * 2))
    with open(path, "wb") as f:
        pic.save(f, format="PNG")


def _explained(wrong: np.ndarray, y: np.ndarray, pred: np.ndarray, count: int) -> list[int]:
    """Up to `count` samples: half the most confident mistakes, then right answers of classes
    not yet shown (the first sample of each), so both kinds of decision are explained."""
    chosen = [int(i) for i in wrong[:(count + 1) // 2]]
    shown = {int(pred[i]) for i in chosen}
    for i in np.flatnonzero((y >= 0) & (pred == y)):
        if len(chosen) >= count:
            break
        if int(pred[i]) not in shown:
            chosen.append(int(i))
            shown.add(int(pred[i]))
    if not chosen:  # no labels: the first samples, explained for what the student says
        chosen = list(range(min(count, len(y))))
    return chosen[:count]


def _attributions(model, part, data, kind: str, chosen: list[int], pred: np.ndarray, y: np.ndarray,
                  teachers: list, names: list[str], arrays: dict, progress: Progress, check, shown) -> dict:
    """Each chosen sample's attribution by the student (integrated gradients), its attention
    (ViT, transformer) and each teacher's that knows the predicted class (occlusion)."""
    import torch

    from engine.insight.attribution import attention_map, display_image, student_attribution, teacher_attribution

    samples = []
    pad = part.pad_id
    for j, i in enumerate(chosen):
        x = torch.from_numpy(np.ascontiguousarray(part.x[[i]], np.float32))
        target = int(pred[i])
        entry = {"sample": i, "label": int(y[i]), "predicted": target, "target": target,
                 "input": None, "student": f"attr_{j}_student", "attention": None, "teachers": {},
                 "tokens": None}
        student = student_attribution(model, x, torch.tensor([target]), kind, pad_id=pad)[0]
        if kind == "text":
            ids = np.asarray(part.x[i]).astype(np.int64)
            length = int((ids != pad).sum()) if pad is not None else len(ids)
            entry["tokens"] = [data.text.tokenizer.id_to_token(int(t)) or f"[{int(t)}]" for t in ids[:length]]
            student = student[:length]
        arrays[entry["student"]] = np.asarray(student, np.float32)
        if kind == "image":
            entry["input"] = f"attr_{j}_input"
            arrays[entry["input"]] = display_image(np.asarray(part.x[i]), shown).astype(np.float32)
        attention = attention_map(model, x, pad_id=pad)
        if attention is not None:
            entry["attention"] = f"attr_{j}_attention"
            arrays[entry["attention"]] = np.asarray(attention[0][:len(student)] if kind == "text"
                                                    else attention[0], np.float32)
        if kind != "text":
            raw = np.asarray(part.x[[i]])
            for k, (name, t) in enumerate(zip(names, teachers)):
                found = teacher_attribution(t, raw, target, kind)
                if found is not None:
                    key = f"attr_{j}_teacher_{k}"
                    arrays[key] = np.asarray(found[0], np.float32)
                    entry["teachers"][name] = key
        samples.append(entry)
        check()
        progress("attribution", 0.7 + 0.2 * (j + 1) / max(1, len(chosen)))
    method = "integrated gradients" + (" (token embeddings)" if kind == "text" else "")
    return {"method": method, "teacher_method": None if kind == "text" else "occlusion", "samples": samples}


def _pictures(folder: Path, insights: dict) -> dict:
    """The four pictures the model card shows (engine/insight/pictures.py)."""
    from engine.insight import pictures

    classes = insights["classes"]
    rows = insights["amalgamation"]
    teacher_names = [m["name"] for m in insights["models"][1:]]

    def pct(v) -> str:
        return "–" if v is None else f"{100 * v:.1f}"
    header = ["class", "samples", "student"] + teacher_names + ["best teacher", "Δ"]
    table = [[classes[r["class"]], str(r["support"]), pct(r["student"])]
             + [pct(r["teachers"].get(n)) if n in r["teachers"] else "" for n in teacher_names]
             + [r["best_teacher"] or "–", "–" if r["delta"] is None else f"{100 * r['delta']:+.1f}"] for r in rows]
    shade = {"beats": pictures.BEATS, "trails": pictures.TRAILS}
    colours = [[None, None, shade.get(r["verdict"])] + [None] * len(teacher_names)
               + [None, shade.get(r["verdict"])] for r in rows]
    pictures.table_png(folder / PICTURES["amalgamation"], header, table,
                       "Per class: the student beside the teachers that know the class (accuracy %)",
                       cell_colours=colours)
    order = insights["confusion"]["order"]
    norm = np.array(insights["confusion"]["normalized"], dtype=np.float64)[np.ix_(order, order)]
    pictures.heatmap_png(folder / PICTURES["confusion"], norm, [classes[i] for i in order],
                         [classes[i] for i in order], "Confusion matrix (share of each true class)",
                         "predicted class", "true class")
    agree = insights["agreement"]
    pictures.heatmap_png(folder / PICTURES["agreement"], agree["rate"], agree["names"], agree["names"],
                         "Agreement on the classes both know", "model", "model")
    pictures.reliability_png(folder / PICTURES["calibration"], insights["calibration"])
    return dict(PICTURES)


def _save_npz(tmp: Path, arrays: dict) -> None:
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
