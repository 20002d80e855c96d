"""The download stage: make ``data/raw`` say where a dataset in Kaggle's layout is.

Sources (``data.source`` in params.yaml):

* ``synthetic`` -- the procedural doodle generator (no network, the default), written into
                   ``data/raw``;
* ``kaggle``    -- the competition files the pipeline reads, downloaded by name into a
                   download folder that later runs reuse (``data.kaggle.download_dir``), then
                   read in place: ``train_simplified.zip`` + ``test_simplified.csv``, or with
                   ``data.kaggle.layout: raw`` ``train_raw.zip`` + ``test_raw.csv`` (+
                   ``test_simplified.csv``, the key_ids the submission must hold);
* ``local``     -- ``data.local.path``: a Kaggle-layout folder (the Kaggle-notebook mount
                   included), the competition zip, ``train_simplified.zip`` or
                   ``train_raw.zip``, read in place in ``data.local.layout``; or a folder of
                   Google's ``full_simplified_<word>.ndjson`` files (converted into
                   ``data/raw``, streamed line by line).

Data read in place is never extracted or copied: ``data/raw`` then holds ``location.json``
(its absolute path) and the shard stage streams the CSVs straight out of the folder or zip
(see :mod:`doodle.data.files`). Whatever the source, ``data/raw`` also gets ``dataset.json``
saying what the data is (kind, origin, test rows and the test file's SHA-256: the submit
guard reads it). It is built in a temp folder and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from pathlib import Path

from tqdm import tqdm

from doodle.config import DataConfig
from doodle.data import synthetic
from doodle.data.files import (
    LOCATION_FILE,
    RawData,
    RawDataError,
    fingerprint,
    locate,
    open_raw,
)
from doodle.data.layout import (
    DATASET_FILE,
    SOLUTION_FILE,
    TEST_COLUMNS,
    TEST_FILE,
    TEST_RAW_FILE,
    TRAIN_COLUMNS,
    TRAIN_DIR,
    TRAIN_RAW_DIR,
)
from doodle.errors import DoodleError
from doodle.fileio import atomic_path, check_disk_space, tree_size, write_csv, write_json

# What the kaggle source downloads (by name), per layout: all the pipeline reads of the
# competition. The raw layout also takes test_simplified.csv: its key_ids are the submission's.
KAGGLE_FILES = {
    "simplified": (f"{TRAIN_DIR}.zip", TEST_FILE),
    "raw": (f"{TRAIN_RAW_DIR}.zip", TEST_RAW_FILE, TEST_FILE),
}


class SourceError(DoodleError, RuntimeError):
    """A data source that cannot be used (named, with the reason)."""


def fetch(cfg: DataConfig, dest: Path, root: Path = Path(".")) -> dict:
    """Materialise the configured source into ``dest`` (atomically); returns a summary."""
    if cfg.source == "synthetic":
        syn = cfg.synthetic
        return fetch_with(
            dest,
            "synthetic",
            "synthetic",
            lambda tmp: synthetic.write_synthetic(
                tmp,
                train_per_class=syn.train_per_class,
                test_per_class=syn.test_per_class,
                seed=syn.seed,
                n_classes=syn.classes,
            ),
        )
    if cfg.source == "kaggle":
        from doodle.kaggle import api as kaggle_api  # talks to Kaggle: only when asked to

        competition = cfg.kaggle.competition
        folder = kaggle_api.download_files(
            competition,
            KAGGLE_FILES[cfg.kaggle.layout],
            download_dir(cfg.kaggle.download_dir, competition),
        )
        return fetch_in_place(folder, dest, "kaggle", competition, cfg.kaggle.layout)
    return fetch_path(
        local_path(cfg, root), dest, cfg.local.ndjson_test_per_class, cfg.local.layout
    )


def local_path(cfg: DataConfig, root: Path = Path(".")) -> Path:
    """``data.local.path`` as an absolute path (relative ones are from the repo root)."""
    if cfg.local.path is None:
        raise SourceError("data.source is local but data.local.path is not set")
    path = Path(str(cfg.local.path)).expanduser()
    return (path if path.is_absolute() else Path(root) / path).absolute()


def download_dir(setting: str | None, competition: str) -> Path:
    """Where kaggle downloads go: ``setting``, else the user's cache folder (outside the
    repo, so every clone, experiment and temp workspace reuses one download)."""
    if setting:
        return Path(setting).expanduser().absolute() / competition
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "doodle" / "kaggle" / competition


def fetch_path(path: Path, dest: Path, ndjson_test_per_class: int, layout: str) -> dict:
    """A local location -> ``dest`` (atomically): ndjson is converted into ``dest``; a
    Kaggle-layout folder or zip is only recorded, to be read in place in ``layout``."""
    path = Path(path).absolute()
    if not path.exists():
        raise SourceError(f"data.source {str(path)!r} does not exist")
    if is_ndjson_folder(path):
        return fetch_with(
            dest, "local", str(path), lambda tmp: convert_ndjson(path, tmp, ndjson_test_per_class)
        )
    return fetch_in_place(path, dest, "local", str(path), layout)


def is_ndjson_folder(path: Path) -> bool:
    """A folder of Google's ``*.ndjson`` files (and not Kaggle's layout)."""
    return (
        path.is_dir()
        and not (path / TRAIN_DIR).is_dir()
        and not (path / TRAIN_RAW_DIR).is_dir()
        and any(path.glob("*.ndjson"))
    )


def fetch_in_place(path: Path, dest: Path, kind: str, origin: str, layout: str) -> dict:
    """Check that ``path`` holds Kaggle's layout and make ``dest`` point at it (no copy)."""
    raw = _locate(path, layout)

    def record(tmp: Path) -> dict:
        # The fingerprint makes data/raw change when a file there changes, so DVC re-runs
        # the shard stage (the files themselves are not DVC's to hash). The layout is the one
        # found (auto resolved), so the shard stage reads the same files.
        where = {"path": str(Path(path).absolute()), "files": raw.fingerprint()}
        if raw.layout != "simplified":  # (simplified pointers stay as they always were)
            where["layout"] = raw.layout
        write_json(tmp / LOCATION_FILE, where)
        return {
            "classes": len(raw.classes),
            "layout": raw.layout,
            "read_in_place": str(path),
            "train_bytes": raw.train_bytes,
        }

    return fetch_with(dest, kind, origin, record, raw=raw)


def _locate(path: Path, layout: str) -> RawData:
    try:
        return locate(path, layout)
    except RawDataError as e:
        raise SourceError(str(e)) from None


def fetch_with(dest: Path, kind: str, origin: str, build, raw: RawData | None = None) -> dict:
    """Run ``build(tmp)`` into a temp folder, describe the result (``raw``, when the caller
    has located it already) in ``DATASET_FILE``, then rename it to ``dest``; returns the
    summary."""
    with atomic_path(Path(dest)) as tmp:
        tmp.mkdir(parents=True)
        summary = build(tmp)
        if raw is None:
            try:
                raw = open_raw(tmp)
            except RawDataError as e:
                raise SourceError(str(e)) from None
        info = describe_dataset(raw, kind, origin)
        write_json(tmp / DATASET_FILE, info)
        summary = {
            "source": origin,
            **summary,
            "test_rows": info["test_rows"],
            "bytes": tree_size(tmp),
        }
    return summary


def describe_dataset(raw: RawData, kind: str, origin: str) -> dict:
    """What the data is: its kind, where it came from, and a fingerprint of the test file
    (row count and SHA-256), so that a submission can be traced back to its test set."""
    digest = hashlib.sha256()
    rows = -1  # the header is not a row
    last = b"\n"
    with raw.test.open_binary() as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            rows += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        rows += 1  # a last line without its newline
    info = {
        "kind": kind,
        "origin": origin,
        "test_rows": max(rows, 0),
        "test_sha256": digest.hexdigest(),
        "test_labelled": raw.solution is not None,
        "classes": len(raw.classes),
    }
    if raw.layout != "simplified":
        # test_rows and test_sha256 are of raw.test: test_simplified.csv when there (the
        # key_ids the submission holds), else test_raw.csv
        info["layout"] = raw.layout
    return info


def source_fingerprint(cfg: DataConfig, root: Path = Path(".")) -> dict:
    """What the ``source`` stage records on every run: for a local source, the names, sizes
    and modification times of the files it reads (no reading), so that replacing a file
    re-runs the stages that depend on it and an unchanged source re-runs nothing."""
    if cfg.source == "synthetic":
        return {"source": "synthetic"}  # its inputs are params, which DVC tracks itself
    if cfg.source == "kaggle":  # a download folder emptied or replaced: download again
        folder = download_dir(cfg.kaggle.download_dir, cfg.kaggle.competition)
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        return {
            "source": "kaggle",
            "path": str(folder),
            "files": fingerprint(f for f in files if f.is_file()),
        }
    path = local_path(cfg, root)
    if not path.exists():
        raise SourceError(f"data.local.path {str(path)!r} does not exist")
    if is_ndjson_folder(path):
        files = fingerprint(path.glob("*.ndjson"))
    else:
        files = _locate(path, cfg.local.layout).fingerprint()
    return {"source": "local", "path": str(path), "files": files}


def convert_ndjson(src: Path, dest: Path, test_per_class: int, seed: int = 0) -> dict:
    """Google's ``full_simplified_<word>.ndjson`` files -> Kaggle's layout, streamed.

    Google's files have no test split, so ``test_per_class`` drawings of each class are set
    aside (chosen by seed) as a labelled, balanced test set like Kaggle's. Each file is read
    twice, a line at a time (count, then convert): memory holds only the test rows.
    """
    files = sorted(src.glob("*.ndjson"))
    # Kaggle's CSV rows are shorter than the JSON records: their size is an upper bound.
    check_disk_space(dest, sum(f.stat().st_size for f in files), "converting the ndjson files")
    (dest / TRAIN_DIR).mkdir(parents=True)
    rng = random.Random(seed)
    test_rows: list[list] = []
    bad = 0
    for f in tqdm(files, desc="ndjson", unit="class"):
        word = f.stem.removeprefix("full_simplified_")
        try:
            with open(f, encoding="utf-8") as fh:
                n = sum(1 for line in fh if line.strip())
            test_idx = set(rng.sample(range(n), min(test_per_class, n // 2)))
            with (
                open(f, encoding="utf-8") as fh,
                open(dest / TRAIN_DIR / f"{word}.csv", "w", newline="", encoding="utf-8") as out,
            ):
                w = csv.writer(out)
                w.writerow(TRAIN_COLUMNS)
                i = -1
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    i += 1
                    row = _ndjson_row(line, word)
                    if row is None:
                        # Kept as a raw row so the shard stage counts and reports it.
                        bad += 1
                        tqdm.write(
                            f"{f}:{lineno}: unreadable ndjson record; passed on as "
                            "bad JSON for the shard report"
                        )
                        row = ["", line.strip()[:200], 0, False, "", word]
                    if i in test_idx:
                        test_rows.append([row[2], row[0], row[1], word])
                    else:
                        w.writerow(row)
        except UnicodeDecodeError as e:
            raise SourceError(f"{f}: not UTF-8 text ({e})") from None
    rng.shuffle(test_rows)
    write_csv(dest / TEST_FILE, TEST_COLUMNS, [r[:3] for r in test_rows])
    write_csv(
        dest / SOLUTION_FILE,
        ["key_id", "word"],
        [[r[0], r[3].replace(" ", "_")] for r in test_rows],
    )
    return {"classes": len(files), "test_rows": len(test_rows), "unreadable_records": bad}


def _ndjson_row(line: str, word: str) -> list | None:
    """One ndjson record as a Kaggle train row, or None when it is unreadable."""
    try:
        rec = json.loads(line)
        return [
            rec.get("countrycode", ""),
            json.dumps(rec["drawing"], separators=(",", ":")),
            int(rec["key_id"]),
            rec.get("recognized", True),
            rec.get("timestamp", ""),
            word,
        ]
    except Exception:  # whatever the record is (bad JSON, nested too deeply, a field missing)
        return None
