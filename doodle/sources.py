"""The download stage: put a dataset in Kaggle's layout under ``data/raw``.

Sources (``data.source`` in params.yaml):

* ``synthetic`` -- the procedural doodle generator (no network, the default);
* ``kaggle``    -- the competition files through the kaggle package (needs credentials);
* ``local``     -- ``data.local.path``: a folder in Kaggle's layout, the competition zip, or
                   a folder of Google's ``full_simplified_<word>.ndjson`` files (converted
                   to Kaggle's layout).

Whatever the source, the result is ``train_simplified/<word>.csv``, ``test_simplified.csv``
and, when labels are known, ``test_solution.csv``, plus ``dataset.json`` saying what the data
is (kind, origin, test rows and the test file's SHA-256: the submit guard reads it). It is
built in a temp folder and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from doodle import synthetic
from doodle.config import DataConfig
from doodle.errors import DoodleError
from doodle.fileio import atomic_path, check_disk_space, tree_size, write_json
from doodle.layout import (
    DATASET_FILE,
    SOLUTION_FILE,
    TEST_COLUMNS,
    TEST_FILE,
    TRAIN_COLUMNS,
    TRAIN_DIR,
)


class SourceError(DoodleError, RuntimeError):
    """A data source that cannot be used (named, with the reason)."""


def fetch(cfg: DataConfig, dest: Path, root: Path = Path(".")) -> dict:
    """Materialise the configured source into ``dest`` (atomically); returns a summary."""
    if cfg.source == "synthetic":
        syn = cfg.synthetic
        return fetch_with(dest, "synthetic", "synthetic", lambda tmp: synthetic.write_synthetic(
            tmp, train_per_class=syn.train_per_class, test_per_class=syn.test_per_class,
            seed=syn.seed, n_classes=syn.classes))
    if cfg.source == "kaggle":
        competition = cfg.kaggle.competition
        return fetch_with(dest, "kaggle", competition,
                          lambda tmp: _from_kaggle(tmp, competition))
    path = Path(str(cfg.local.path))
    return fetch_path(path if path.is_absolute() else root / path, dest,
                      cfg.local.ndjson_test_per_class)


def fetch_path(path: Path, dest: Path, ndjson_test_per_class: int) -> dict:
    """A local folder, zip or ndjson folder -> ``dest`` in Kaggle's layout (atomically)."""
    return fetch_with(dest, "local", str(path),
                      lambda tmp: from_path(Path(path), tmp, ndjson_test_per_class))


def fetch_with(dest: Path, kind: str, origin: str, build) -> dict:
    """Run ``build(tmp)`` into a temp folder, describe the result in ``DATASET_FILE``, then
    rename it to ``dest``; returns the summary."""
    with atomic_path(Path(dest)) as tmp:
        tmp.mkdir(parents=True)
        summary = build(tmp)
        info = describe_dataset(tmp, kind, origin)
        write_json(tmp / DATASET_FILE, info)
        summary = {"source": origin, **summary, "test_rows": info["test_rows"],
                   "bytes": tree_size(tmp)}
    return summary


def describe_dataset(folder: Path, kind: str, origin: str) -> dict:
    """What the data is: its kind, where it came from, and a fingerprint of the test file
    (row count and SHA-256), so that a submission can be traced back to its test set."""
    test = Path(folder) / TEST_FILE
    digest = hashlib.sha256()
    rows = -1  # the header is not a row
    with open(test, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            rows += block.count(b"\n")
        if test.stat().st_size and not _ends_with_newline(f):
            rows += 1
    return {"kind": kind, "origin": origin, "test_rows": max(rows, 0),
            "test_sha256": digest.hexdigest(),
            "test_labelled": (Path(folder) / SOLUTION_FILE).is_file(),
            "classes": len(list((Path(folder) / TRAIN_DIR).glob("*.csv")))}


def _ends_with_newline(f) -> bool:
    f.seek(-1, 2)
    return f.read(1) == b"\n"


def from_path(path: Path, dest: Path, test_per_class: int = 100) -> dict:
    """A local folder (Kaggle layout or ndjson files) or the competition zip -> ``dest``."""
    if not path.exists():
        raise SourceError(f"data.source {str(path)!r} does not exist")
    if path.is_file() and zipfile.is_zipfile(path):
        return extract_zip(path, dest)
    if path.is_file():
        raise SourceError(f"{path}: not a zip file (truncated download?) and not a folder")
    if (path / TRAIN_DIR).is_dir():
        return copy_kaggle_layout(path, dest)
    if any(path.glob("*.ndjson")):
        return convert_ndjson(path, dest, test_per_class)
    raise SourceError(f"{path}: expected {TRAIN_DIR}/ and {TEST_FILE} (Kaggle layout), "
                      "the competition zip, or full_simplified_<word>.ndjson files")


def copy_kaggle_layout(src: Path, dest: Path) -> dict:
    """Copy a Kaggle-layout folder (train CSVs, test CSV, optional solution)."""
    files = sorted((src / TRAIN_DIR).glob("*.csv"))
    if not files:
        raise SourceError(f"{src / TRAIN_DIR}: no .csv class files")
    if not (src / TEST_FILE).is_file():
        raise SourceError(f"{src}: {TEST_FILE} is missing")
    extra = [src / n for n in (TEST_FILE, SOLUTION_FILE) if (src / n).is_file()]
    check_disk_space(dest, sum(f.stat().st_size for f in files + extra), "copying the data")
    (dest / TRAIN_DIR).mkdir(parents=True)
    for f in tqdm(files, desc="copy", unit="file"):
        shutil.copyfile(f, dest / TRAIN_DIR / f.name)
    for f in extra:
        shutil.copyfile(f, dest / f.name)
    return {"classes": len(files)}


def extract_zip(zip_path: Path, dest: Path, nested: bool = False) -> dict:
    """Extract the competition zip (or a zip of the Kaggle layout) into ``dest``.

    Kaggle's archive nests ``train_simplified.zip`` inside; both levels are handled, and
    in the nested one a class file may sit at the root (``<word>.csv``).
    """
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            check_disk_space(dest, sum(i.file_size for i in zf.infolist()), "extracting")
            for name in tqdm(names, desc=f"unzip {zip_path.name}", unit="file"):
                base = Path(name)
                if name.endswith("/"):
                    continue
                if base.name == "train_simplified.zip":
                    inner = dest / ".nested.zip"
                    with zf.open(name) as src, open(inner, "wb") as out:
                        shutil.copyfileobj(src, out)
                    extract_zip(inner, dest, nested=True)
                    inner.unlink()
                elif base.suffix == ".csv" and (base.parent.name == TRAIN_DIR or (
                        nested and base.parent == Path("."))):
                    _extract_member(zf, name, dest / TRAIN_DIR / base.name)
                elif base.name in (TEST_FILE, SOLUTION_FILE):
                    _extract_member(zf, name, dest / base.name)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise SourceError(f"{zip_path}: corrupt or truncated zip ({e}); download it again") \
            from None
    if not (dest / TRAIN_DIR).is_dir():
        raise SourceError(f"{zip_path}: no {TRAIN_DIR}/*.csv inside")
    return {"classes": len(list((dest / TRAIN_DIR).glob("*.csv")))}


def _extract_member(zf: zipfile.ZipFile, name: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(name) as src, open(out, "wb") as f:
        shutil.copyfileobj(src, f)


def convert_ndjson(src: Path, dest: Path, test_per_class: int, seed: int = 0) -> dict:
    """Google's ``full_simplified_<word>.ndjson`` files -> Kaggle's layout.

    Google's files have no test split, so ``test_per_class`` drawings of each class are set
    aside (chosen by seed) as a labelled, balanced test set like Kaggle's.
    """
    (dest / TRAIN_DIR).mkdir(parents=True)
    rng = random.Random(seed)
    files = sorted(src.glob("*.ndjson"))
    test_rows: list[list] = []
    bad = 0
    for f in tqdm(files, desc="ndjson", unit="class"):
        word = f.stem.removeprefix("full_simplified_")
        rows = []
        try:
            with open(f, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        rows.append([rec.get("countrycode", ""), json.dumps(
                            rec["drawing"], separators=(",", ":")), int(rec["key_id"]),
                            rec.get("recognized", True), rec.get("timestamp", ""), word])
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                        # Kept as a raw row so the shard stage counts and reports it.
                        bad += 1
                        tqdm.write(f"{f}:{lineno}: unreadable ndjson record ({e}); passed on "
                                   "as bad JSON for the shard report")
                        rows.append(["", line.strip()[:200], 0, False, "", word])
        except UnicodeDecodeError as e:
            raise SourceError(f"{f}: not UTF-8 text ({e})") from None
        rng.shuffle(rows)
        n_test = min(test_per_class, len(rows) // 2)
        test_rows += [[r[2], r[0], r[1], word] for r in rows[:n_test]]
        _write_csv(dest / TRAIN_DIR / f"{word}.csv", TRAIN_COLUMNS, rows[n_test:])
    rng.shuffle(test_rows)
    _write_csv(dest / TEST_FILE, TEST_COLUMNS, [r[:3] for r in test_rows])
    _write_csv(dest / SOLUTION_FILE, ["key_id", "word"],
               [[r[0], r[3].replace(" ", "_")] for r in test_rows])
    return {"classes": len(files), "test_rows": len(test_rows), "unreadable_records": bad}


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _from_kaggle(dest: Path, competition: str) -> dict:
    from doodle import kaggle_api  # talks to Kaggle: only when asked to

    zip_path = kaggle_api.download_competition(dest.parent, competition)
    try:
        return extract_zip(zip_path, dest)
    finally:
        zip_path.unlink(missing_ok=True)
