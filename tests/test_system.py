"""Layer 0 (ipslib.system): atomic writes, md5 of files, the data folder, peak memory and machine info."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from ipslib.system import files, machine
from ipslib.system.files import (
    atomic_write_bytes,
    atomic_write_chunks,
    atomic_write_json,
    atomic_write_text,
    data_root,
    file_md5,
)
from ipslib.system.machine import MACHINE_KEYS, machine_info, peak_memory_mb


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------- atomic writes
def test_writes_replace_content_create_parents_and_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    assert atomic_write_text(tmp_path / "a.txt", "twö") == tmp_path / "a.txt"
    atomic_write_bytes(str(tmp_path / "b.bin"), b"\x00\xff")
    atomic_write_json(tmp_path / "sub" / "deeper" / "c.json", {"z": [1, 2], "a": None})
    assert (tmp_path / "a.txt").read_bytes() == "twö".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    text = (tmp_path / "sub" / "deeper" / "c.json").read_text()
    assert text == '{\n  "z": [\n    1,\n    2\n  ],\n  "a": null\n}\n'  # insertion order, final newline
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "c.json", "deeper", "sub"]


def test_json_default_encodes_unknown_objects(tmp_path):
    atomic_write_json(tmp_path / "p.json", {"path": Path("x/y")}, default=str)
    assert json.loads((tmp_path / "p.json").read_text()) == {"path": "x/y"}


@pytest.mark.parametrize("mask", [None, 0o022, 0o027, 0o077])
def test_mode_is_that_of_a_plain_open_under_the_umask(tmp_path, mask):
    before = os.umask(mask) if mask is not None else None
    try:
        effective = _umask()
        atomic_write_text(tmp_path / "new.txt", "x")
        atomic_write_text(tmp_path / "old.txt", "x")
        atomic_write_text(tmp_path / "old.txt", "y")  # a replacement gets the mode of a new file too
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("x")
    finally:
        if before is not None:
            os.umask(before)
    for name in ("new.txt", "old.txt", "plain.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~effective, name


def _broken_chunks(error: BaseException):
    yield b"partial data "
    raise error


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_error_mid_write_leaves_no_temp_file_and_the_old_file_untouched(tmp_path, error):
    atomic_write_text(tmp_path / "keep.txt", "old")
    with pytest.raises(type(error)):
        atomic_write_chunks(tmp_path / "keep.txt", _broken_chunks(error))
    with pytest.raises(type(error)):
        atomic_write_chunks(tmp_path / "fresh.txt", _broken_chunks(error))
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_unencodable_json_and_failed_rename_keep_the_old_file(tmp_path, monkeypatch):
    atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"x": object()})

    def refuse(src, dst):
        raise PermissionError(f"cannot replace {dst}")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(PermissionError):
        atomic_write_bytes(tmp_path / "a.json", b"new")
    monkeypatch.undo()
    assert (tmp_path / "a.json").read_text() == "old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_chunks_are_streamed_once_in_order(tmp_path):
    consumed = []

    def chunks():
        for i in range(200):
            consumed.append(i)
            yield bytes([i]) * 1000

    atomic_write_chunks(tmp_path / "stream.bin", chunks())
    assert consumed == list(range(200))
    assert (tmp_path / "stream.bin").read_bytes() == b"".join(bytes([i]) * 1000 for i in range(200))
    source = io.BytesIO(b"abc" * 10_000)
    atomic_write_chunks(tmp_path / "copy.bin", iter(lambda: source.read(4096), b""))
    assert (tmp_path / "copy.bin").read_bytes() == b"abc" * 10_000
    atomic_write_chunks(tmp_path / "empty.bin", [])
    assert (tmp_path / "empty.bin").read_bytes() == b""


def test_temp_names_are_retried_and_exhaustion_is_explained(tmp_path, monkeypatch):
    names = iter(["taken", "taken", "free"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".f.txt.taken.tmp").write_text("someone else's")
    atomic_write_text(tmp_path / "f.txt", "mine")
    assert (tmp_path / "f.txt").read_text() == "mine"
    assert (tmp_path / ".f.txt.taken.tmp").read_text() == "someone else's"
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "taken")
    with pytest.raises(FileExistsError, match=r"could not create a temporary file for f\.txt"):
        atomic_write_text(tmp_path / "f.txt", "again")
    assert (tmp_path / "f.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------- md5
def test_file_md5_matches_hashlib_on_a_file_of_several_chunks(tmp_path):
    data = os.urandom(3 * 2**20 + 12_345)  # hashlib.file_digest reads 256 KiB at a time
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    expected = hashlib.md5(data).hexdigest()
    assert file_md5(path) == expected and file_md5(str(path)) == expected
    assert file_md5(io.BytesIO(data)) == expected
    with gzip.open(tmp_path / "big.bin.gz", "wb") as handle:
        handle.write(data)
    with gzip.open(tmp_path / "big.bin.gz", "rb") as handle:
        assert file_md5(handle) == expected  # the uncompressed content
    (tmp_path / "empty").write_bytes(b"")
    assert file_md5(tmp_path / "empty") == "d41d8cd98f00b204e9800998ecf8427e"


def test_file_md5_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        file_md5(tmp_path / "absent")


# ------------------------------------------------------------------------------------------- data root
def test_data_root_honours_ipslib_data_then_defaults_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IPSLIB_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root("~/x") == tmp_path / "home" / "x"
    monkeypatch.setenv("IPSLIB_DATA", "")
    assert data_root() == tmp_path / "home" / ".cache" / "ipslib"
    monkeypatch.delenv("IPSLIB_DATA")
    assert data_root() == data_root("") == tmp_path / "home" / ".cache" / "ipslib"


def test_datasets_use_the_one_data_root(tmp_path, monkeypatch):
    from ipslib.data import mnist, traffic_signs

    monkeypatch.setenv("IPSLIB_DATA", str(tmp_path))
    assert mnist.mnist_dir() == tmp_path / "mnist"
    assert traffic_signs.default_root() == tmp_path / "traffic_signs"


# ---------------------------------------------------------------------------------------------- machine
def test_machine_info_keys_and_types():
    info = machine_info()
    assert tuple(info) == MACHINE_KEYS
    assert json.loads(json.dumps(info)) == info
    for key in ("python", "platform", "processor", "cpu_model", "torch", "torchvision", "numpy"):
        assert isinstance(info[key], str) and info[key], key
    assert isinstance(info["cpu_count"], int) and info["cpu_count"] >= 1
    assert info["memory_gib"] is None or (isinstance(info["memory_gib"], float) and info["memory_gib"] > 0)
    assert info["cuda"] is None or isinstance(info["cuda"], str)
    import numpy
    import torch

    assert (info["torch"], info["numpy"]) == (torch.__version__, numpy.__version__)
    assert (info["gpu"] is None) == (not torch.cuda.is_available())


def test_machine_info_reports_missing_packages_as_none(monkeypatch):
    real = machine.import_module

    def without_torchvision(name):
        if name == "torchvision":
            raise ImportError("no torchvision here")
        return real(name)

    monkeypatch.setattr(machine, "import_module", without_torchvision)
    info = machine_info()
    assert info["torchvision"] is None and info["torch"] is not None


def test_peak_memory_reads_the_process_peak_off_a_gpu():
    import numpy as np
    import torch

    from ipslib.engine import runtime

    before = peak_memory_mb()
    block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MiB, touched
    after = peak_memory_mb()
    del block
    assert 0 < before <= after and after >= 64
    assert peak_memory_mb("cpu") == peak_memory_mb(torch.device("cpu")) == peak_memory_mb()
    assert runtime.peak_memory_mb is peak_memory_mb


def test_code_version_reads_the_commit_of_a_git_tree(tmp_path):
    import subprocess

    from ipslib.system.machine import code_version

    assert code_version(tmp_path) == {"commit": None, "dirty": None}
    run = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f.py").write_text("x = 1\n")
    run("add", "f.py")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = code_version(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "f.py").write_text("x = 2\n")
    assert code_version(tmp_path)["dirty"] is True
