"""Kaggle's layout wherever it lives, read in place: never extracted, never copied.

A *location* is a folder or a zip file, in one of Kaggle's two layouts (:mod:`doodle.data.layout`):

* a folder with ``train_simplified/<word>.csv`` (e.g. the read-only Kaggle-notebook mount
  ``/kaggle/input/quickdraw-doodle-recognition``) or ``train_simplified.zip``, plus
  ``test_simplified.csv`` (or Kaggle's ``test_simplified.csv.zip``) and optionally
  ``test_solution.csv`` (labels, for local scoring);
* the competition zip: ``train_simplified/<word>.csv`` members or a nested
  ``train_simplified.zip``, plus ``test_simplified.csv``;
* ``train_simplified.zip`` on its own, with ``test_simplified.csv`` beside it;
* the same in the *raw* layout: ``train_raw/`` or ``train_raw.zip`` with ``test_raw.csv``
  (a folder, the competition zip, or ``train_raw.zip`` with ``test_raw.csv`` beside it).
  ``test_simplified.csv``, when there, names the test drawings the submission must cover (the
  shard stage checks that ``test_raw.csv`` holds the same key_ids).

``layout`` says which one to read: ``simplified``, ``raw``, or ``auto`` (the simplified files
when the location has them, else the raw ones; the competition zip has both).

Each file of the dataset is a :class:`Member`: a path, optionally a member of the zip at that
path, optionally a member of a zip nested in it. A member is opened as a text stream, so a
class file is parsed straight out of the archive, one chunk at a time. Members are small,
picklable values: worker processes each open their own.
"""

from __future__ import annotations

import functools
import io
import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

from doodle.data.layout import SOLUTION_FILE, TEST_FILE, TEST_RAW_FILE, TRAIN_DIR, TRAIN_RAW_DIR
from doodle.errors import DoodleError

LOCATION_FILE = "location.json"  # in data/raw when the data is read in place
TRAIN_ZIP = f"{TRAIN_DIR}.zip"
TRAIN_RAW_ZIP = f"{TRAIN_RAW_DIR}.zip"
# What each file of a location is (``found`` keys); class files of either layout.
_SIMPLIFIED, _RAW = "class", "raw_class"
_TEST_NAMES = {TEST_FILE: "test", TEST_RAW_FILE: "test_raw", SOLUTION_FILE: "solution"}
# The files (kinds) each layout reads; the fingerprint lists only those.
_READS = {
    "simplified": (_SIMPLIFIED, "test", "solution"),
    "raw": (_RAW, "test_raw", "test", "solution"),
}
# What reading a damaged archive raises, at open time or mid-stream (CRC, truncation).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile)


class RawDataError(DoodleError, RuntimeError):
    """A location that does not hold Kaggle's layout (names the path and what is missing)."""


@dataclass(frozen=True)
class Member:
    """One file of the dataset: ``path`` on disk, or ``member`` of the zip at ``path``,
    or ``inner`` of the zip stored as that member."""

    path: str
    member: str | None = None
    inner: str | None = None
    size: int = 0  # uncompressed bytes

    @property
    def name(self) -> str:
        """How messages name it: ``/data/comp.zip:train_simplified/cat.csv``."""
        return ":".join(p for p in (self.path, self.member, self.inner) if p)

    @property
    def stem(self) -> str:
        return PurePosixPath(self.inner or self.member or self.path).stem

    @contextmanager
    def open_binary(self) -> Iterator[io.BufferedIOBase]:
        with ExitStack() as stack:
            if self.member is None:
                f = stack.enter_context(open(self.path, "rb"))
            else:
                f = stack.enter_context(_zip(self.path).open(self.member))
                if self.inner is not None:
                    inner = stack.enter_context(zipfile.ZipFile(f))
                    f = stack.enter_context(inner.open(self.inner))
            yield f

    @contextmanager
    def open_text(self) -> Iterator[TextIO]:
        """UTF-8 text (a BOM is dropped), newlines untranslated (what ``csv`` wants)."""
        with self.open_binary() as f:
            yield io.TextIOWrapper(f, encoding="utf-8-sig", newline="")


def _zip(path: str) -> zipfile.ZipFile:
    """An open ZipFile for ``path``, kept per process: reading a zip's directory costs ~5 ms
    (340 entries), once per class file otherwise. Keyed by size and mtime too, so a zip
    replaced at the same path is read afresh."""
    st = os.stat(path)
    return _open_zip(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _open_zip(path: str, size: int, mtime_ns: int) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


@dataclass
class RawData:
    """Where each file of the dataset is: ``classes`` maps a word to its train file.

    ``test`` is the file whose key_ids the submission must hold (``test_simplified.csv``; in
    the raw layout without it, ``test_raw.csv``); ``test_drawings`` the one the test drawings
    are read from (``test_raw.csv`` in the raw layout)."""

    origin: str
    classes: dict[str, Member]
    test: Member
    solution: Member | None = None
    files: list[Path] = field(default_factory=list)  # the files on disk read from
    layout: str = "simplified"
    test_raw: Member | None = None

    @property
    def test_drawings(self) -> Member:
        return self.test_raw if self.layout == "raw" and self.test_raw is not None else self.test

    def fingerprint(self) -> list[dict]:
        """Names, sizes and modification times of the files on disk (cheap: no reading)."""
        return fingerprint(self.files)

    @property
    def train_bytes(self) -> int:
        return sum(m.size for m in self.classes.values())


def fingerprint(files: Iterable[Path]) -> list[dict]:
    """``{path, bytes, mtime_ns}`` of each file, sorted by path (stat only, no reading)."""
    out = []
    for p in sorted(set(files)):
        st = Path(p).stat()
        out.append({"path": str(p), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def locate(path: Path, layout: str) -> RawData:
    """Index the location ``path`` (folder or zip) in ``layout`` (``simplified``, ``raw`` or
    ``auto``); raises :class:`RawDataError`."""
    path = Path(path)
    if layout not in ("auto", "simplified", "raw"):
        raise ValueError(f"layout must be auto, simplified or raw, got {layout!r}")
    if not path.exists():
        raise RawDataError(f"{path} does not exist")
    found: dict[str, list] = {k: [] for k in (_SIMPLIFIED, _RAW, *_TEST_NAMES.values())}
    blocked: dict[str, str] = {}  # class kind -> why its nested zip cannot be read
    if path.is_dir():
        _scan_folder(path, found, blocked)
    elif zipfile.is_zipfile(path):
        bare = {TRAIN_ZIP: _SIMPLIFIED, TRAIN_RAW_ZIP: _RAW}.get(path.name)
        _scan_zip(path, found, blocked, bare, path)
        for name, kind in _TEST_NAMES.items():  # a bare train zip: the test files beside it
            if not found[kind] and (path.parent / name).is_file():
                _add_file(path.parent / name, kind, found)
    else:
        raise RawDataError(f"{path}: not a zip file (truncated download?) and not a folder")
    if layout == "auto":
        has = {k: bool(found[k]) or k in blocked for k in (_SIMPLIFIED, _RAW)}
        layout = "raw" if has[_RAW] and not has[_SIMPLIFIED] else "simplified"
    return _assemble(path, found, blocked, layout)


def _scan_folder(folder: Path, found: dict, blocked: dict) -> None:
    for sub, kind in ((TRAIN_DIR, _SIMPLIFIED), (TRAIN_RAW_DIR, _RAW)):
        if (folder / sub).is_dir():
            for f in sorted((folder / sub).glob("*.csv")):
                _add_file(f, kind, found)
    for f in sorted(folder.iterdir()):
        if f.name in _TEST_NAMES and f.is_file():
            _add_file(f, _TEST_NAMES[f.name], found)
        elif f.is_file() and f.name in (TRAIN_ZIP, TRAIN_RAW_ZIP):
            _scan_zip(f, found, blocked, _SIMPLIFIED if f.name == TRAIN_ZIP else _RAW, f)
        elif f.is_file() and f.name.removesuffix(".zip") in _TEST_NAMES:
            _scan_zip(f, found, blocked, None, f)


def _add_file(f: Path, kind: str, found: dict) -> None:
    found[kind].append((Member(str(f), size=f.stat().st_size), f))


def _scan_zip(zpath: Path, found: dict, blocked: dict, bare: str | None, disk: Path) -> None:
    """Every member of the zip at ``zpath`` (``bare``: the kind of .csv members at its root)."""
    try:
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                p = PurePosixPath(info.filename)
                if info.is_dir():
                    continue
                if p.name in (TRAIN_ZIP, TRAIN_RAW_ZIP):  # the competition zip nests them
                    kind = _SIMPLIFIED if p.name == TRAIN_ZIP else _RAW
                    if info.compress_type != zipfile.ZIP_STORED:
                        # Each class file read would inflate the nested zip from its start.
                        blocked[kind] = (
                            f"{zpath}: its {p.name} is stored compressed, so it cannot be "
                            f"read in place; take it out once (unzip {zpath} {p.name} "
                            f"{TEST_RAW_FILE if kind == _RAW else TEST_FILE} -d <folder>) "
                            "and set data.local.path to <folder>"
                        )
                        continue
                    with zipfile.ZipFile(zf.open(info)) as inner:
                        for sub in inner.infolist():
                            _classify(
                                PurePosixPath(sub.filename),
                                kind,
                                found,
                                Member(str(zpath), info.filename, sub.filename, sub.file_size),
                                disk,
                            )
                else:
                    m = Member(str(zpath), info.filename, size=info.file_size)
                    _classify(p, bare, found, m, disk)
    except ZIP_ERRORS as e:
        raise RawDataError(f"{zpath}: corrupt or truncated zip ({e}); download it again") from None


def _classify(p: PurePosixPath, bare: str | None, found: dict, m: Member, disk: Path) -> None:
    if p.suffix != ".csv":
        return
    if p.parent.name == TRAIN_DIR:
        found[_SIMPLIFIED].append((m, disk))
    elif p.parent.name == TRAIN_RAW_DIR:
        found[_RAW].append((m, disk))
    elif bare and p.parent == PurePosixPath("."):
        found[bare].append((m, disk))
    elif p.name in _TEST_NAMES:
        found[_TEST_NAMES[p.name]].append((m, disk))


def _assemble(path: Path, found: dict, blocked: dict, layout: str) -> RawData:
    kind, train_dir = (_RAW, TRAIN_RAW_DIR) if layout == "raw" else (_SIMPLIFIED, TRAIN_DIR)
    if kind in blocked and not found[kind]:
        raise RawDataError(blocked[kind])
    classes: dict[str, Member] = {}
    for m, _ in found[kind]:
        if m.stem in classes:
            raise RawDataError(
                f"{path}: class {m.stem!r} appears twice ({classes[m.stem].name} and {m.name})"
            )
        classes[m.stem] = m
    if not classes:
        other = {"raw": (_SIMPLIFIED, "simplified"), "simplified": (_RAW, "raw")}[layout]
        hint = (
            f"; it holds Kaggle's {other[1]} files: set data.local.layout (or "
            f"data.kaggle.layout) to {other[1]}"
            if found[other[0]] or other[0] in blocked
            else ""
        )
        test = TEST_RAW_FILE if layout == "raw" else TEST_FILE
        raise RawDataError(
            f"{path}: no {train_dir}/<word>.csv class files (expected Kaggle's {layout} "
            f"layout: a {train_dir}/ folder or {train_dir}.zip, and {test}){hint}"
        )
    for k, fname in (("test", TEST_FILE), ("test_raw", TEST_RAW_FILE), ("solution", SOLUTION_FILE)):
        if len(found[k]) > 1:
            raise RawDataError(
                f"{path}: {fname} found twice: " + ", ".join(m.name for m, _ in found[k])
            )
    first = {k: (found[k] or [(None, None)])[0][0] for k in ("test", "test_raw", "solution")}
    if layout == "raw" and first["test_raw"] is None:
        raise RawDataError(f"{path}: {TEST_RAW_FILE} is missing (beside {TRAIN_RAW_DIR})")
    if layout == "simplified" and first["test"] is None:
        raise RawDataError(f"{path}: {TEST_FILE} is missing (beside {TRAIN_DIR})")
    # The fingerprint: the files on disk this layout reads (not the other layout's).
    files = [disk for k in _READS[layout] for _, disk in found[k]]
    return RawData(
        origin=str(path),
        classes=dict(sorted(classes.items())),
        test=first["test"] or first["test_raw"],
        solution=first["solution"],
        files=list(dict.fromkeys(files)),
        layout=layout,
        test_raw=first["test_raw"] if layout == "raw" else None,
    )


def open_raw(raw_dir: Path) -> RawData:
    """What the shard stage reads: ``raw_dir`` itself (a folder in Kaggle's layout), or the
    location its ``location.json`` points to, in the layout recorded there."""
    raw_dir = Path(raw_dir)
    pointer = raw_dir / LOCATION_FILE
    if pointer.is_file():
        where = json.loads(pointer.read_text())
        return locate(Path(where["path"]), where.get("layout", "simplified"))
    return locate(raw_dir, "auto")
