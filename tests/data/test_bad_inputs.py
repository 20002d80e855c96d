"""The bad-input corpus (tests/bad_inputs/cases.yaml): every case through the real stage
function, a few through the real stage script, and the decisions table kept in sync."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from doodle.data.download import SourceError, fetch_path
from doodle.data.sharding import ShardStageError, shard_dataset
from doodle.data.shards import ShardError, open_shard, read_header, train_shard_paths
from doodle.errors import InputError
from doodle.fileio import DiskSpaceError, check_disk_space
from tests.pipeline_utils import merge

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "bad_inputs"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]
BY_ID = {c["id"]: c for c in CASES}
N_SHARDS, VAL_SIZE = 2, 2


def _corpus_module():
    """tests/bad_inputs/make_corpus.py (a script beside its fixtures, not a package)."""
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _corpus_module()
ODD_NAMES = {
    "The Eiffel Tower.csv": "class_spaces.csv",
    'it\'s "quoted", too.csv': "class_quotes.csv",
    "café crème 日本.csv": "class_non_ascii.csv",
}


# -- building inputs ---------------------------------------------------------------------------


def base_raw(dest: Path, base: str = "simplified") -> Path:
    """A copy of the corpus' good folder (``base: raw``: the one in Kaggle's raw layout)."""
    shutil.copytree(CORPUS / ("base_raw" if base == "raw" else "base"), dest)
    return dest


def lay_files(raw: Path, files: dict[str, str]) -> None:
    """Overlay fixture files on a raw folder ("-" deletes the target)."""
    for target, source in files.items():
        if source == "-":
            (raw / target).unlink()
        else:
            shutil.copyfile(CORPUS / source, raw / target)


def lay_cells(raw: Path, cells: dict[str, dict[int, str]]) -> None:
    """Put the big cells in: ``{file: {row: name}}``, that row's drawing cell becomes
    ``make_corpus.BIG_CELLS[name]()`` (row 1 = the first after the header)."""
    for target, rows in cells.items():
        path = raw / target
        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        col = table[0].index("drawing")
        for row, name in rows.items():
            table[row][col] = make_corpus.BIG_CELLS[name]()
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(table)


def long_drawing_row(n_strokes: int = 40, points: int = 500) -> str:
    """A cat row whose drawing has ``n_strokes * points`` points (all coordinates 0..255)."""
    rng = np.random.default_rng(3)
    strokes = [
        [rng.integers(0, 256, points).tolist(), rng.integers(0, 256, points).tolist()]
        for _ in range(n_strokes)
    ]
    cell = json.dumps(strokes).replace('"', '""')
    return f'US,"{cell}",5999999999999999,True,2017-03-01 10:00:00.5,cat\n'


def zip_of(raw: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(raw.rglob("*.csv")):
            zf.write(f, f.relative_to(raw).as_posix())
    return dest


def make_input(case: dict, tmp: Path) -> Path:
    """The case's input: a raw folder (shard cases), a path (download), a shard file."""
    make = case.get("make")
    raw = base_raw(tmp / "raw", case.get("base", "simplified"))
    lay_files(raw, case.get("files", {}))
    lay_cells(raw, case.get("cells", {}))
    if make is None:
        return raw
    if make == "long_drawing":
        with open(raw / "train_simplified" / "cat.csv", "a", newline="") as f:
            f.write(long_drawing_row())
        return raw
    if make == "truncated_zip":
        z = zip_of(raw, tmp / "data.zip")
        z.write_bytes(z.read_bytes()[: int(z.stat().st_size * 0.6)])
        return z
    if make == "corrupt_zip_member":
        z = zip_of(raw, tmp / "data.zip")
        data = bytearray(z.read_bytes())
        with zipfile.ZipFile(z) as zf:
            info = zf.getinfo("train_simplified/cat.csv")
        start = info.header_offset + 30 + len(info.filename) + 20  # inside its data
        data[start : start + 40] = bytes(40)
        z.write_bytes(bytes(data))
        return z
    if make == "raw_zip":
        z = tmp / "beside" / "train_raw.zip"
        z.parent.mkdir()
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted((raw / "train_raw").glob("*.csv")):
                zf.write(f, f.name)
        for name in ("test_raw.csv", "test_simplified.csv", "test_solution.csv"):
            shutil.copy(raw / name, z.parent / name)
        return z
    if make == "zip_without_train":
        z = tmp / "data.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.write(raw / "test_simplified.csv", "test_simplified.csv")
            zf.write(raw / "train_simplified" / "cat.csv", "cat.csv")  # not under the folder
        return z
    if make == "odd_names_folder":
        for target, source in ODD_NAMES.items():
            shutil.copyfile(CORPUS / "files" / source, raw / "train_simplified" / target)
        return raw
    if make in ("ndjson_bad_record", "ndjson_deep_record", "ndjson_not_utf8"):
        folder = tmp / "ndjson"
        folder.mkdir()
        for f in sorted((raw / "train_simplified").glob("*.csv")):
            with open(f, newline="", encoding="utf-8") as fh:
                lines = [
                    json.dumps(
                        {
                            "word": r["word"],
                            "countrycode": r["countrycode"],
                            "key_id": r["key_id"],
                            "drawing": json.loads(r["drawing"]),
                        },
                        ensure_ascii=False,
                    )
                    for r in csv.DictReader(fh)
                ]
            if f.stem == "cat":
                lines[2] = "not json" if make == "ndjson_bad_record" else lines[2]
                if make == "ndjson_deep_record":
                    deep = make_corpus.BIG_CELLS["deep_nesting"]()
                    lines[2] = f'{{"word": "cat", "key_id": "1", "drawing": {deep}}}'
                lines[3] = lines[3].replace('"US"', '"Curaçao"')
            encoding = "latin-1" if make == "ndjson_not_utf8" and f.stem == "cat" else "utf-8"
            (folder / f"full_simplified_{f.stem}.ndjson").write_text(
                "\n".join(lines) + "\n", encoding=encoding
            )
        return folder
    if make == "truncated_shard":
        out = tmp / "shards"
        shard_dataset(raw, out, N_SHARDS, VAL_SIZE, 0, tmp / "shard.json")
        shard = train_shard_paths(out)[0]
        shard.write_bytes(shard.read_bytes()[:-50])
        return shard
    raise AssertionError(f"unknown generator {make!r}")


def run_case(case: dict, tmp: Path) -> tuple[dict, Path]:
    """Run the case's stage function; returns (summary or report, output path)."""
    src = make_input(case, tmp)
    stage = case.get("stage", "shard")
    if stage == "shard":
        out = tmp / "shards"
        return shard_dataset(src, out, N_SHARDS, VAL_SIZE, 0, tmp / "shard.json"), out
    if stage == "download":
        out = tmp / "out_raw"
        return fetch_path(src, out, 100, case.get("layout", "auto")), out
    if stage == "shard_file":
        return {"n": len(open_shard(src))}, src
    raise AssertionError(f"unknown stage {stage!r}")


def skipped_rows(
    shard_dir: Path, raw: Path, name: str = "skipped_rows.csv"
) -> list[tuple[str, int, str]]:
    with open(shard_dir / name, newline="", encoding="utf-8") as f:
        return [
            (Path(r["file"]).relative_to(raw).as_posix(), int(r["row"]), r["reason"])
            for r in csv.DictReader(f)
        ]


def check_expect(case: dict, result: dict) -> None:
    for key, want in case.get("expect", {}).items():
        got = (result["train_rows"] + result["holdout_rows"]) if key == "kept" else result[key]
        assert got == want, f"{case['id']}: {key} = {got!r}, expected {want!r}"


def no_temp_left(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name]


# -- the corpus through the stage functions ----------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict, tmp_path: Path) -> None:
    outcome = case["outcome"]
    if outcome == "error":
        with pytest.raises((ShardStageError, InputError, SourceError, ShardError)) as err:
            run_case(case, tmp_path)
        msg = str(err.value)
        for part in case["message"]:
            assert part in msg, f"{part!r} not in {msg!r}"
        if case.get("stage", "shard") == "shard":
            assert not (tmp_path / "shards").exists(), "a failed stage must leave no output"
        if case.get("stage") == "download":
            assert not (tmp_path / "out_raw").exists()
        no_temp_left(tmp_path)
        return

    result, out = run_case(case, tmp_path)
    check_expect(case, result)
    no_temp_left(tmp_path)
    if case.get("stage", "shard") != "shard":
        return
    raw = tmp_path / "raw"
    listed = skipped_rows(out, raw)
    repaired = skipped_rows(out, raw, "repaired_rows.csv") if case.get("base") == "raw" else []
    if outcome == "ok":
        assert listed == [] and result["skipped_total"] == 0
        assert repaired == [] and result.get("repaired_total", 0) == 0
        return
    if outcome.startswith("repair:"):
        # Kept (the expected counts above), listed and counted as repaired, not skipped.
        want = [tuple(r) for r in case["rows"]]
        assert listed == [] and result["skipped_total"] == 0
        assert repaired == want
        assert result["repaired"] == {outcome.removeprefix("repair:"): len(want)}
        for file in {f for f, _, _ in want}:
            entry = result["files"][str(raw / file)]
            assert sum(entry["repaired"].values()) == sum(1 for f, _, _ in want if f == file)
            assert entry["rows"] == entry["kept"]
        metrics = json.loads((tmp_path / "shard.json").read_text())
        assert metrics["repaired_total"] == len(want)
        return
    assert outcome.startswith("skip:")
    want = [tuple(r) for r in case["rows"]]
    assert sorted(listed) == sorted(want)
    prefix = outcome.removeprefix("skip:").rstrip("*")
    assert all(reason.startswith(prefix) for _, _, reason in listed)
    # Counted in the report, per reason and per file, as listed.
    by_reason: dict[str, int] = {}
    for _, _, reason in want:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    assert result["skipped"] == by_reason
    assert result["skipped_total"] == len(want)
    for file in {f for f, _, _ in want}:
        entry = result["files"][str(raw / file)]
        assert sum(entry["skipped"].values()) == sum(1 for f, _, _ in want if f == file)
        if file.startswith(("train_simplified/", "train_raw/")):
            assert entry["rows"] == entry["kept"] + sum(entry["skipped"].values())
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == by_reason
    metrics = json.loads((tmp_path / "shard.json").read_text())
    assert metrics["skipped_total"] == len(want) and "files" not in metrics


@pytest.mark.parametrize("base,train", [("simplified", "train_simplified"), ("raw", "train_raw")])
def test_every_row_accounted_for(tmp_path: Path, base: str, train: str) -> None:
    """Lines of a class file = header + kept + listed as skipped (nothing dropped silently)."""
    raw = base_raw(tmp_path / "raw", base)
    sources = [
        c["files"][f"{train}/cat.csv"]
        for c in CASES
        if c.get("files", {}).get(f"{train}/cat.csv", "").endswith(".csv")
        and c["outcome"] != "error"
    ]
    assert len(sources) > (15 if base == "simplified" else 10)
    # All the bad cat files at once, each as its own class file, its rows' word its class.
    lay_files(raw, {f"{train}/cat.csv": "-"})
    for i, src in enumerate(sources):
        word = "cat" if i == 0 else f"zz{i:02d}"
        text = (CORPUS / src).read_bytes().decode("utf-8")
        text = re.sub(r"^cat,", f"{word},", text, flags=re.M)  # the word column first
        text = re.sub(r",cat(?=\r?$)", f",{word}", text, flags=re.M)  # or last
        (raw / train / f"{word}.csv").write_bytes(text.encode("utf-8"))
    report = shard_dataset(raw, tmp_path / "s", N_SHARDS, VAL_SIZE, 0, tmp_path / "r.json")
    listed = skipped_rows(tmp_path / "s", raw)
    for f in sorted((raw / train).glob("*.csv")):
        lines = [ln for ln in f.read_text(encoding="utf-8-sig").splitlines()[1:] if ln]
        entry = report["files"][str(f)]
        n_listed = sum(1 for name, _, _ in listed if name == f"{train}/{f.name}")
        assert entry["kept"] + n_listed == len(lines), f.name
    # Only the row written to mismatch its file's class does (the copies' words were moved).
    mismatched = [(name, row) for name, row, reason in listed if reason == "word_mismatch"]
    assert len(mismatched) == (base == "simplified"), mismatched


def test_long_drawing_kept_intact(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    run_case(BY_ID["long_drawing"], tmp_path)
    from doodle.data.shards import read_classes

    cat = read_classes(out).index("cat")
    paths = [*train_shard_paths(out), out / "holdout.qds"]
    n_points = [
        int(s.drawings.n_points[i])
        for s in map(open_shard, paths)
        for i in np.flatnonzero(s.key_id == 5999999999999999)
    ]
    assert n_points == [20_000]
    shard = next(s for s in map(open_shard, paths) if 5999999999999999 in s.key_id)
    assert shard.label[list(shard.key_id).index(5999999999999999)] == cat


def test_class_names_round_trip(tmp_path: Path) -> None:
    """Odd class names become exact class names and labels, also after a download (copy)."""
    raw = make_input(BY_ID["odd_names_folder"], tmp_path)
    copied = tmp_path / "copied"
    summary = fetch_path(raw, copied, 100, "auto")
    assert summary["classes"] == 6
    shard_dataset(copied, tmp_path / "s", N_SHARDS, VAL_SIZE, 0, tmp_path / "r.json")
    classes = json.loads((tmp_path / "s" / "classes.json").read_text(encoding="utf-8"))
    assert set(classes) >= {"The Eiffel Tower", 'it\'s "quoted", too', "café crème 日本"}
    paths = [*train_shard_paths(tmp_path / "s"), tmp_path / "s" / "holdout.qds"]
    labels = np.concatenate([open_shard(p).label for p in paths])
    counts = dict(zip(classes, np.bincount(labels, minlength=len(classes)).tolist(), strict=True))
    assert counts == {c: 8 if c in ("apple", "cat", "dog") else 4 for c in classes}


def test_truncated_shard_fails_at_load_time(tmp_path: Path) -> None:
    """A later stage's loader reads only headers up front: the truncation is caught there."""
    shard = make_input(BY_ID["truncated_shard"], tmp_path)
    with pytest.raises(ShardError, match="truncated"):
        read_header(shard)
    from doodle.training.dataset import DrawingDataset

    with pytest.raises(ShardError, match=str(shard.name)):
        DrawingDataset(
            [shard], batch_size=4, img_size=32, n_classes=3, encoding="grey", line_width=6.0
        )


def test_disk_space_checked_before_any_output(tmp_path: Path, monkeypatch) -> None:
    raw = base_raw(tmp_path / "raw")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 5))
    with pytest.raises(DiskSpaceError, match="sharding needs about"):
        shard_dataset(raw, tmp_path / "s", N_SHARDS, VAL_SIZE, 0, tmp_path / "r.json")
    ndjson = tmp_path / "ndjson"  # the one local source that is converted, not read in place
    ndjson.mkdir()
    (ndjson / "full_simplified_cat.ndjson").write_text('{"drawing": [[[0], [0]]]}\n')
    with pytest.raises(DiskSpaceError, match="converting the ndjson files needs about"):
        fetch_path(ndjson, tmp_path / "copy", 100, "auto")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ndjson", "raw"]
    with pytest.raises(DiskSpaceError, match=r"needs about 2\.0 KiB .* only 5 B is free"):
        check_disk_space(tmp_path, 2048, "x")


# -- the real stage scripts: one sentence on stderr, exit code 1, never a traceback ------------


def _stage_env() -> dict:
    """The stage's environment: this checkout's code first on the path (``python -m stages.x``
    runs in a temp folder, where the installed package could be another checkout's)."""
    env = dict(os.environ)
    env.pop("DOODLE_TRACEBACK", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_stage_script(stage: str, cwd: Path, params: dict) -> subprocess.CompletedProcess:
    """Run a stage script with the repo's params.yaml, ``params`` merged over it."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    (cwd / "params.yaml").write_text(yaml.safe_dump(merge(base, params)))
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"],
        cwd=cwd,
        env=_stage_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


CLI_CASES = [c for c in CASES if c.get("cli")]


@pytest.mark.e2e  # runs a stage script in a subprocess
@pytest.mark.parametrize("case", CLI_CASES, ids=[c["id"] for c in CLI_CASES])
def test_case_through_stage_script(case: dict, tmp_path: Path) -> None:
    work = tmp_path / "repo"
    (work / "data").mkdir(parents=True)
    src = make_input(case, tmp_path)
    stage = case.get("stage", "shard")
    if stage == "shard":
        shutil.move(src, work / "data" / "raw")
        params = {"shard": {"n_shards": N_SHARDS, "val_size": VAL_SIZE, "seed": 0}}
    else:
        params = {"data": {"source": "local", "local": {"path": str(src)}}}
    p = run_stage_script(stage, work, params)
    assert "Traceback" not in p.stderr, p.stderr
    if case["outcome"] == "error":
        assert p.returncode == 1, p.stdout + p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith(f"{stage}: error: ")]
        assert len(lines) == 1, p.stderr
        for part in case["message"]:
            assert part in lines[0]
        out = work / "data" / ("shards" if stage == "shard" else "raw")
        assert not out.exists()
        no_temp_left(work / "data")
    else:
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"{stage}: done in" in p.stdout
        if stage == "shard":
            report = json.loads((work / "data" / "shards" / "report.json").read_text())
            check_expect(case, report)
            listed = "repaired_total" if case["outcome"].startswith("repair:") else "skipped_total"
            assert report[listed] == len(case.get("rows", []))


@pytest.mark.e2e  # runs a stage script in a subprocess
def test_stage_script_bad_params(tmp_path: Path) -> None:
    """A broken or incomplete params.yaml: one line on stderr, exit code 1."""
    for text, want in (
        ("shard:\n  n_shards: [2\n", "shard: error: params.yaml: invalid YAML: "),
        ("data: {}\n", "shard: error: params.yaml: missing key img_size"),
    ):
        (tmp_path / "params.yaml").write_text(text)
        p = subprocess.run(
            [sys.executable, "-m", "stages.shard"],
            cwd=tmp_path,
            env=_stage_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("shard: error: ")]
        assert len(errors) == 1 and errors[0].startswith(want), p.stderr


# -- the corpus is documented ------------------------------------------------------------------


def test_every_case_documented() -> None:
    doc = (ROOT / "docs" / "BAD_INPUTS.md").read_text(encoding="utf-8")
    missing = [c["id"] for c in CASES if f"`{c['id']}`" not in doc]
    assert not missing, f"cases without a row in docs/BAD_INPUTS.md: {missing}"


def test_fixtures_match_their_generator(tmp_path: Path) -> None:
    """The committed fixtures are exactly what make_corpus.py writes (rebuild, don't edit)."""
    make_corpus.main(tmp_path)
    made = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    kept = {
        p.relative_to(CORPUS): p.read_bytes()
        for d in ("base", "base_raw", "files")
        for p in (CORPUS / d).rglob("*")
        if p.is_file()
    }
    assert made == kept


def test_fixtures_exist_and_are_small() -> None:
    for case in CASES:
        for source in case.get("files", {}).values():
            if source != "-":
                assert (CORPUS / source).is_file(), source
    assert all(f.stat().st_size < 4096 for f in CORPUS.rglob("*.csv"))
