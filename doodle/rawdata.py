"""Kaggle's layout wherever it lives, read in place: never extracted, never copied.

A *location* is a folder or a zip file:

* a folder with ``train_simplified/<word>.csv`` (e.g. the read-only Kaggle-notebook mount
  ``/kaggle/input/quickdraw-doodle-recognition``) or ``train_simplified.zip``, plus
  ``test_simplified.csv`` (or Kaggle's ``test_simplified.csv.zip``) and optionally
  ``test_solution.csv`` (labels, for local scoring);
* the competition zip: ``train_simplified/<word>.csv`` members or a nested
  ``train_simplified.zip``, plus ``test_simplified.csv``;
* ``train_simplified.zip`` on its own, with ``test_simplified.csv`` beside it.

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

from doodle.errors import DoodleError
from doodle.layout import SOLUTION_FILE, TEST_FILE, TRAIN_DIR

LOCATION_FILE = "location.json"  # in data/raw when the data is read in place
TRAIN_ZIP = f"{TRAIN_DIR}.zip"
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
    """Where each file of the dataset is: ``classes`` maps a word to its train file."""

    origin: str
    classes: dict[str, Member]
    test: Member
    solution: Member | None = None
    files: list[Path] = field(default_factory=list)  # the files on disk read from

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


def locate(path: Path) -> RawData:
    """Index the location ``path`` (folder or zip); raises :class:`RawDataError`."""
    path = Path(path)
    if not path.exists():
        raise RawDataError(f"{path} does not exist")
    found: dict[str, list[Member]] = {"class": [], "test": [], "solution": []}
    files: list[Path] = []
    if path.is_dir():
        _scan_folder(path, found, files)
    elif zipfile.is_zipfile(path):
        _scan_zip(path, found, files, bare_train=path.name == TRAIN_ZIP)
        if not found["test"] and (path.parent / TEST_FILE).is_file():
            _add_file(path.parent / TEST_FILE, found, files)
            if (path.parent / SOLUTION_FILE).is_file():
                _add_file(path.parent / SOLUTION_FILE, found, files)
    else:
        raise RawDataError(f"{path}: not a zip file (truncated download?) and not a folder")
    return _assemble(path, found, files)


def _scan_folder(folder: Path, found: dict, files: list[Path]) -> None:
    train = folder / TRAIN_DIR
    if train.is_dir():
        for f in sorted(train.glob("*.csv")):
            _add_file(f, found, files, as_class=True)
    for f in sorted(folder.iterdir()):
        if f.name in (TEST_FILE, SOLUTION_FILE) and f.is_file():
            _add_file(f, found, files)
        elif f.name in (TRAIN_ZIP, TEST_FILE + ".zip") and f.is_file():
            _scan_zip(f, found, files, bare_train=f.name == TRAIN_ZIP)


def _add_file(f: Path, found: dict, files: list[Path], as_class: bool = False) -> None:
    files.append(f)
    m = Member(str(f), size=f.stat().st_size)
    found["class" if as_class else _kind(f.name)].append(m)


def _kind(name: str) -> str:
    return {TEST_FILE: "test", SOLUTION_FILE: "solution"}[name]


def _scan_zip(zpath: Path, found: dict, files: list[Path], bare_train: bool) -> None:
    files.append(zpath)
    try:
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                p = PurePosixPath(info.filename)
                if info.is_dir():
                    continue
                if p.name == TRAIN_ZIP:  # the competition zip nests the train zip
                    if info.compress_type != zipfile.ZIP_STORED:
                        # Each class file read would inflate the nested zip from its start.
                        raise RawDataError(
                            f"{zpath}: its {TRAIN_ZIP} is stored compressed, so it cannot be "
                            f"read in place; take it out once (unzip {zpath} {TRAIN_ZIP} "
                            f"{TEST_FILE} -d <folder>) and set data.local.path to <folder>"
                        )
                    with zipfile.ZipFile(zf.open(info)) as inner:
                        for sub in inner.infolist():
                            _classify(
                                PurePosixPath(sub.filename),
                                True,
                                found,
                                Member(str(zpath), info.filename, sub.filename, sub.file_size),
                            )
                else:
                    _classify(
                        p, bare_train, found, Member(str(zpath), info.filename, size=info.file_size)
                    )
    except ZIP_ERRORS as e:
        raise RawDataError(f"{zpath}: corrupt or truncated zip ({e}); download it again") from None


def _classify(p: PurePosixPath, bare_train: bool, found: dict, m: Member) -> None:
    if p.suffix != ".csv":
        return
    if p.parent.name == TRAIN_DIR or (bare_train and p.parent == PurePosixPath(".")):
        found["class"].append(m)
    elif p.name in (TEST_FILE, SOLUTION_FILE):
        found[_kind(p.name)].append(m)


def _assemble(path: Path, found: dict, files: list[Path]) -> RawData:
    classes: dict[str, Member] = {}
    for m in found["class"]:
        if m.stem in classes:
            raise RawDataError(
                f"{path}: class {m.stem!r} appears twice ({classes[m.stem].name} and {m.name})"
            )
        classes[m.stem] = m
    if not classes:
        raise RawDataError(
            f"{path}: no {TRAIN_DIR}/<word>.csv class files (expected Kaggle's "
            f"layout: a {TRAIN_DIR}/ folder or {TRAIN_ZIP}, and {TEST_FILE})"
        )
    for kind, fname in (("test", TEST_FILE), ("solution", SOLUTION_FILE)):
        if len(found[kind]) > 1:
            raise RawDataError(
                f"{path}: {fname} found twice: " + ", ".join(m.name for m in found[kind])
            )
    if not found["test"]:
        raise RawDataError(f"{path}: {TEST_FILE} is missing (beside {TRAIN_DIR})")
    return RawData(
        origin=str(path),
        classes=dict(sorted(classes.items())),
        test=found["test"][0],
        solution=(found["solution"] or [None])[0],
        files=files,
    )


def open_raw(raw_dir: Path) -> RawData:
    """What the shard stage reads: ``raw_dir`` itself, or the location it points to."""
    raw_dir = Path(raw_dir)
    pointer = raw_dir / LOCATION_FILE
    if pointer.is_file():
        return locate(Path(json.loads(pointer.read_text())["path"]))
    return locate(raw_dir)
