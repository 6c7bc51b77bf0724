"""Images in folders, for the image-folder source (engine/data/image_folder.py) and the scan the
app shows on a data node (engine/scan_folder.py): one subfolder per class (labelled) or the
images directly in a folder (unlabelled), read with Pillow.

- **Listing** (`list_images`): the images (JPEG, PNG, WebP, BMP, any case) of a folder, sorted
  by path; files of other kinds are counted and left alone; hidden files and folders are skipped;
  linked folders are followed (a class folder may be a link), each real folder once (no loops).
- **Decoding** (`decode`): EXIF orientation honoured; grey, palette and RGBA converted to RGB
  (transparency dropped) or to grey; scaled (JPEGs decoded at a reduced scale first, which is
  much faster) and centre-cropped, or stretched, to `size`; uint8 [C, H, W], 0–255, as the data.
  An image declaring more than MAX_PIXELS pixels is refused before it is decoded.
- **Checking** (`check_images`): every image is decoded once, in worker processes, before any
  run reads the folder; a truncated or damaged file is named by its path and skipped (counted)
  or refused, as `data.corrupt` says. The result is kept in a cache keyed by the fingerprint.
- **Fingerprint** (`fingerprint`): cheap and documented: sha256 over every image's relative
  path, size in bytes and modification time (ns), plus the first and last 4 KiB of up to 256
  images spread evenly over the sorted list. A renamed, added, removed, resized or touched
  image changes it; so does an edit that keeps size and mtime in one of the sampled files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.spec import IMAGE_SUFFIXES, FolderData
from engine.text_safety import excerpt, listed, quoted

MAX_PIXELS = 64_000_000  # one image: more is a decompression bomb or not a photo to train on
SAMPLED_FILES = 256  # files whose content enters the fingerprint
SAMPLED_BYTES = 4096  # from the start and from the end of each


@dataclass
class Listing:
    """The images of one folder, sorted by path."""

    root: Path
    files: list[str]  # relative paths
    sizes: list[int]
    mtimes: list[int]  # ns
    classes: list[str | None]  # the subfolder (class) of each image; None in a flat folder
    ignored: dict[str, int] = field(default_factory=dict)  # other files, by suffix

    @property
    def labelled(self) -> bool:
        return bool(self.files) and self.classes[0] is not None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.classes:
            out[c or ""] = out.get(c or "", 0) + 1
        return out


class Cancelled(Exception):
    """The caller asked to stop scanning."""


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def list_images(root: Path, where: str, progress: Callable[[int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> Listing:
    """The images in `root` (class subfolders, or flat), or InputError saying what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise InputError.one(where, f"{root} is a file, not a folder" if root.exists() else f"no folder at {root}",
                             "give the folder that holds the images, or one subfolder of images per class")
    listing = Listing(root, [], [], [], [])
    top: list[os.DirEntry] = []
    subfolders: list[os.DirEntry] = []
    for entry in _entries(root, where):
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            subfolders.append(entry)
        elif entry.is_file() and _is_image(entry.name):
            top.append(entry)
        else:  # another kind of file, or a link to nothing
            _ignored(listing, entry.name)

    def add(entry: os.DirEntry, cls: str | None) -> None:
        try:
            st = entry.stat()
        except OSError:
            return  # gone since listed
        listing.files.append(os.path.relpath(entry.path, root))
        listing.sizes.append(st.st_size)
        listing.mtimes.append(st.st_mtime_ns)
        listing.classes.append(cls)
        if progress and len(listing.files) % 1000 == 0:
            progress(len(listing.files))
        if cancelled and len(listing.files) % 200 == 0 and cancelled():
            raise Cancelled()

    in_classes = 0
    seen: set[tuple[int, int]] = {_identity(root)}
    for folder in sorted(subfolders, key=lambda e: e.name):
        before = len(listing.files)
        for entry in _walk(Path(folder.path), where, listing, seen):
            add(entry, folder.name)
        in_classes += len(listing.files) - before
    if top and in_classes:
        raise InputError.one(where, f"{root} holds {len(top)} images directly and {in_classes} in "
                             "subfolders: a folder is either one subfolder per class (labelled) or "
                             "images directly in it (unlabelled)", "move the loose images into their "
                             "class's subfolder, or into a folder of their own given as data.unlabeled")
    for entry in sorted(top, key=lambda e: e.name):
        add(entry, None)
    if not listing.files:
        others = ", ".join(f"{n} {k or 'without suffix'}" for k, n in sorted(listing.ignored.items())[:5])
        raise InputError.one(where, f"no images in {root} or its subfolders"
                             + (f" (it holds {others} files)" if others else ""),
                             f"put {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES[1:])} or JPEG images "
                             "in it: one subfolder per class, or directly for unlabelled images")
    if progress:
        progress(len(listing.files))
    return listing


def _ignored(listing: Listing, name: str) -> None:
    """A file that is not an image: counted (by suffix), never read."""
    suffix = Path(name).suffix.lower()
    listing.ignored[suffix] = listing.ignored.get(suffix, 0) + 1


def _entries(folder: Path, where: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as exc:
        raise InputError.one(where, f"cannot read the folder {folder} ({exc.strerror or exc})",
                             "check that it exists and that you may read it") from None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # a link to a folder too
    except OSError:
        return False


def _identity(folder: Path) -> tuple[int, int]:
    st = os.stat(folder)
    return st.st_dev, st.st_ino


def _walk(folder: Path, where: str, listing: Listing, seen: set[tuple[int, int]]):
    """The image files under `folder`, sorted, depth first; each real folder once, however many
    links lead to it (so a link loop ends)."""
    try:
        identity = _identity(folder)
    except OSError:
        return
    if identity in seen:
        return
    seen.add(identity)
    for entry in sorted(_entries(folder, where), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            yield from _walk(Path(entry.path), where, listing, seen)
        elif entry.is_file() and _is_image(entry.name):
            yield entry
        else:
            _ignored(listing, entry.name)


def fingerprint(listing: Listing) -> str:
    """sha256 of the names, sizes and mtimes of every image and the content of a sample of them
    (module docstring)."""
    h = hashlib.sha256(b"image-folder/1\n")
    for name, size, mtime, cls in zip(listing.files, listing.sizes, listing.mtimes, listing.classes):
        h.update(f"{name}\0{size}\0{mtime}\0{cls}\n".encode("utf-8", "surrogateescape"))
    n = len(listing.files)
    for i in sorted({int(k * n / SAMPLED_FILES) for k in range(min(n, SAMPLED_FILES))}):
        try:
            with open(listing.root / listing.files[i], "rb") as f:
                h.update(f.read(SAMPLED_BYTES))
                if listing.sizes[i] > 2 * SAMPLED_BYTES:
                    f.seek(-SAMPLED_BYTES, os.SEEK_END)
                    h.update(f.read(SAMPLED_BYTES))
        except OSError:
            h.update(b"unreadable")
    return h.hexdigest()


class BadImage(Exception):
    """An image that cannot be used; the message says why. `lasting`: false when the cause may
    pass (no permission, an I/O error, too many open files), so it is not remembered."""

    def __init__(self, message: str, lasting: bool = True):
        super().__init__(message)
        self.lasting = lasting


def decode(path: Path, size: tuple[int, int], resize: str = "crop", channels: int = 3) -> np.ndarray:
    """One image as uint8 [channels, height, width] (module docstring), or BadImage."""
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    h, w = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise BadImage(f"declares {img.width}×{img.height} pixels, more than the "
                                   f"{MAX_PIXELS // 1_000_000} million an image may have")
                mode = "RGB" if channels == 3 else "L"
                img.draft(mode, (w, h))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when still ≥ size
                img = ImageOps.exif_transpose(img)
                if img.mode in ("P", "PA", "LA", "RGBA", "I;16", "I", "F", "CMYK", "YCbCr", "1") or img.mode != mode:
                    if img.mode == "P" and "transparency" in img.info:
                        img = img.convert("RGBA")
                    img = img.convert(mode)
                if resize == "crop":
                    img = ImageOps.fit(img, (w, h), Image.Resampling.BILINEAR)
                else:
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
                array = np.asarray(img, dtype=np.uint8)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("is not an image Pillow can read (damaged, or another format under an image "
                       "name)") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system said no: the image may be fine
            raise BadImage(f"cannot be read ({exc.strerror or exc})", lasting=False) from None
        said = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise BadImage(f"cannot be decoded ({said})") from None
    except (ValueError, SyntaxError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, MemoryError) as exc:
        said = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise BadImage(f"cannot be decoded ({said})") from None
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def _check_chunk(args) -> list[tuple[int, str, bool]]:
    root, files, start, size, resize, channels = args
    bad = []
    for i, name in enumerate(files):
        try:
            decode(Path(root) / name, size, resize, channels)
        except BadImage as exc:
            bad.append((start + i, str(exc), exc.lasting))
    return bad


def default_workers(workers: int | None) -> int:
    if workers is not None:
        return workers
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def check_images(listing: Listing, settings: FolderData, workers: int, cache: Path | None,
                 fp: str) -> list[tuple[str, str]]:
    """(relative path, why) of every image that cannot be decoded; from the cache when this
    folder (same fingerprint) was checked before."""
    import PIL

    settings_key = hashlib.sha256(repr((fp, settings.size, settings.resize, settings.channels,
                                        PIL.__version__)).encode()).hexdigest()
    key = cache / f"{settings_key[:40]}.json" if cache else None
    if key is not None and key.is_file():
        try:
            bad = json.loads(key.read_text(encoding="utf-8"))
            if isinstance(bad, list) and all(isinstance(b, list) and len(b) == 2 for b in bad):
                return [(str(a), str(b)) for a, b in bad]
        except (OSError, ValueError):
            pass
    size, n = (settings.size[0], settings.size[1]), len(listing.files)
    step = max(64, n // max(1, workers * 8))
    chunks = [(str(listing.root), listing.files[i:i + step], i, size, settings.resize, settings.channels)
              for i in range(0, n, step)]
    if workers > 0 and len(chunks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            found = [b for part in pool.map(_check_chunk, chunks) for b in part]
    else:
        found = [b for chunk in chunks for b in _check_chunk(chunk)]
    bad = [(listing.files[i], why) for i, why, _ in sorted(found)]
    if key is not None and all(lasting for _, _, lasting in found):  # a passing cause is checked again
        from engine.atomic_io import atomic_write_text

        try:
            key.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(key, json.dumps([list(b) for b in bad]))
        except OSError:
            pass  # a check that cannot be kept only costs time next run
    return bad


def describe_bad(bad: list[tuple[str, str]], root: Path, shown: int = 5) -> str:
    named = "; ".join(f"{excerpt(root / name, 200)} {why}" for name, why in bad[:shown])
    return named + (f"; and {len(bad) - shown} more" if len(bad) > shown else "")


def unknown_classes(listing: Listing, classes: list[str]) -> list[str]:
    return sorted({c for c in listing.classes if c is not None and c not in classes})


def class_problem(listing: Listing, classes: list[str], where: str) -> InputError | None:
    unknown = unknown_classes(listing, classes)
    if not unknown:
        return None
    return InputError.one(where, f"{listing.root} has subfolders that are not classes of the spec: "
                          f"{listed(quoted(c) for c in unknown)}",
                          f"add them to classes (the spec has {len(classes)}: "
                          f"{', '.join(classes[:8])}{' …' if len(classes) > 8 else ''}), or move those "
                          "subfolders out")
