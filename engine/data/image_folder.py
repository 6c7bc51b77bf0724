"""An image folder (`format: folder`): one subfolder per class, or flat for an unlabelled
transfer set, plus an optional unlabelled folder beside it. Streamed: each batch is decoded
from disk (in worker processes, engine/data/feed.py) as uint8 [C, H, W]; nothing holds the
whole folder in memory.

Every image is decoded once when the folder is opened (in worker processes; kept in a cache
keyed by the folder's fingerprint, so a later run reads the result): those that cannot be
read are skipped with a count and their paths in the log, or refuse the data, as
`data.corrupt` says. Listing, decoding and the fingerprint: engine/data/images.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data import images
from engine.data.labels import missing_classes_note
from engine.data.source import Source, register
from engine.errors import InputError
from engine.spec import FolderData


class FolderSource(Source):
    streamed = True
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: list[str], labels: np.ndarray | None, settings: FolderData,
                 digests: list[str], notes: tuple[str, ...]):
        self.paths, self.labels, self.notes = paths, labels, notes
        self.size = (settings.size[0], settings.size[1])
        self.resize, self.channels = settings.resize, settings.channels
        self.sample_shape = (settings.channels, *self.size)
        self._digests = digests

    def __len__(self) -> int:
        return len(self.paths)

    def read_native(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.sample_shape), dtype=np.uint8)
        for row, i in enumerate(idx):
            path = self.paths[int(i)]
            try:
                out[row] = images.decode(Path(path), self.size, self.resize, self.channels)
            except images.BadImage as exc:  # readable when the folder was checked: changed since
                raise InputError.one("data", f"{path} {exc} (it was readable when the folder was "
                                     "checked: it changed during the run)", "put the image back as "
                                     "it was, or start the run again to check the folder anew",
                                     "data_changed") from None
        return out

    def read(self, idx: np.ndarray) -> np.ndarray:
        return self.read_native(idx).astype(np.float32)

    def digest(self, h) -> None:
        h.update(repr(("folder", self.size, self.resize, self.channels, len(self.paths))).encode())
        for d in self._digests:
            h.update(d.encode())


@register("folder")
def open_folder(src: FolderData, classes: list[str], cache_dir: Path | None = None) -> FolderSource:
    workers = images.default_workers(src.workers)
    checks = Path(cache_dir) / "image-checks" if cache_dir else None
    paths: list[str] = []
    labels: list[int] = []
    digests: list[str] = []
    notes: list[str] = []
    index = {c: i for i, c in enumerate(classes)}
    labelled_any = False
    for where, root in (("data.path", src.path), ("data.unlabeled", src.unlabeled)):
        if root is None:
            continue
        listing = images.list_images(root, where)
        if where == "data.unlabeled" and listing.labelled:
            raise InputError.one(where, f"{root} holds class subfolders; data.unlabeled is a folder of "
                                 "images without labels", "give it as data.path (labelled), or put "
                                 "the images directly in the unlabelled folder")
        problem = images.class_problem(listing, classes, where)
        if problem:
            raise problem
        fp = images.fingerprint(listing)
        bad = images.check_images(listing, src, workers, checks, fp)
        digests.append(fp)
        if bad:
            said = images.describe_bad(bad, root)
            if src.corrupt == "refuse":
                raise InputError.one(where, f"{len(bad)} of the {len(listing.files)} images in {root} "
                                     f"cannot be read: {said}", "replace or remove those files, or set "
                                     "data.corrupt to skip", "corrupt_data")
            notes.append(f"{root}: skipped {len(bad)} of {len(listing.files)} images that cannot be "
                         f"read (data.corrupt: skip): {said}")
            digests.append(repr(bad))
        skip = {name for name, _ in bad}
        kept = [(name, cls) for name, cls in zip(listing.files, listing.classes) if name not in skip]
        paths += [str(Path(root) / name) for name, _ in kept]
        labels += [index[cls] if cls is not None else -1 for _, cls in kept]
        labelled_any |= listing.labelled
        counts = listing.counts()
        what = (f"{len(kept)} images in {len(counts)} classes" if listing.labelled
                else f"{len(kept)} unlabelled images")
        ignored = sum(listing.ignored.values())
        others = "1 file that is not an image was" if ignored == 1 else f"{ignored} files that are not images were"
        notes.append(f"{root}: {what}, read at {src.size[0]}×{src.size[1]} "
                     f"({'RGB' if src.channels == 3 else 'grey'}, {src.resize})"
                     + (f"; {others} left alone" if ignored else ""))
    if labelled_any and (note := missing_classes_note(labels, classes, "images")):
        notes.append(note)
    if not paths:
        raise InputError.one("data.path", f"none of the images in {src.path} can be read",
                             "check the files: they are all damaged or not images")
    y = np.asarray(labels, dtype=np.int64) if labelled_any else None
    if y is not None and not (y >= 0).any():
        y = None
    return FolderSource(paths, y, src, digests, tuple(notes))
