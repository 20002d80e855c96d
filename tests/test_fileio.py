import pytest

from doodle.fileio import DiskSpaceError, atomic_path, check_disk_space


def test_atomic_file_replaced_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_folder_swap(tmp_path):
    target = tmp_path / "dir"
    (target).mkdir()
    (target / "old").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["dir"]


def test_stale_temps_of_a_killed_run_are_cleaned(tmp_path):
    """A temp sibling a killed run left is removed by the next write of that output, and
    nothing else is touched."""
    (tmp_path / ".x.tmp-1234abcd").write_text("half")
    (tmp_path / ".other.tmp-1234abcd").write_text("not ours")
    with atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1234abcd", "x"]


def test_disk_space_message(tmp_path):
    with pytest.raises(DiskSpaceError, match=r"needs about .* free"):
        check_disk_space(tmp_path, 1 << 60, "sharding")
    check_disk_space(tmp_path, 1, "tiny")
