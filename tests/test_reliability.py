"""Fault injection: every way issue 14 found the tool could finish wrong, replayed, and what happens instead.

Non-finite values, damaged and malicious checkpoints, kills at random points and inside file writes, a full
disk (a real 1 MiB tmpfs where the machine lets us mount one), concurrent processes on one run directory and
on ``status.json``, thread counts, bad inputs to ``predict`` and to the data loaders. After each fault the run
must be exactly where it would have been (bit-identical to an uninterrupted run) or stop with one line
``ipslib <command>: error: ...`` naming the file or key, exit code 2.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tiny import tiny_mnist

from ipslib import cli
from ipslib.config import ConfigError, RunConfig
from ipslib.engine import checkpoint, records
from ipslib.engine import training as engine
from ipslib.system.errors import CheckpointError, DataError, DiskFull, LockHeld, NonFiniteError, RecordError
from ipslib.system.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_mnist(canvas_size=140, n_noise=3, patch_size=28, epochs=2, warmup_epochs=1)
TIMED = ("epoch_seconds", "ms_per_batch", "peak_memory_mb")


def tiny(**changes) -> RunConfig:
    return RunConfig.from_flat({**TINY, **changes})


def params_file(folder: Path, **changes) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("ipslib: warning:")]
    assert len(lines) == 1 and lines[0].startswith(f"ipslib {command}: error: "), err
    return lines[0]


def outcome(run_dir: Path) -> tuple[dict, pd.DataFrame, dict]:
    """What a run produced, without timings: metrics, history, final weights."""
    metrics = {k: v for k, v in records.read_metrics(run_dir).items() if k not in ("efficiency", "wall_seconds")}
    history = records.read_history(run_dir).drop(columns=list(TIMED))
    return metrics, history, checkpoint.load_checkpoint(run_dir / records.CHECKPOINT_FILE)["model"]


def assert_same_outcome(a: Path, b: Path) -> None:
    (ma, ha, wa), (mb, hb, wb) = outcome(a), outcome(b)
    assert ma == mb
    pd.testing.assert_frame_equal(ha, hb)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted two-epoch run of TINY."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    torch.set_num_threads(1)
    engine.train(tiny(), run_dir, progress=False)
    return run_dir


# ------------------------------------------------------------------------------------ 1. non-finite values
@pytest.mark.parametrize("key", ["lr", "weight_decay", "warmup_epochs", "diversity_weight", "semantic_weight"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_config_values_must_be_finite(tmp_path, capsys, key, value):
    path = params_file(tmp_path)
    path.write_text(path.read_text() + f"{key}: {value}\n")  # YAML's own spelling, as a user would write it
    code, err = run_cli(capsys, "train", path, "--out", tmp_path / "run")
    assert code == 2 and f"{key}=" in one_error_line(err, "train") and "finite" in err
    with pytest.raises(ConfigError, match="noise_thickness=nan is not a finite number"):
        tiny(noise_thickness=float("nan"))


def test_nan_loss_stops_at_once_and_the_run_is_recorded_failed(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_cli(
        capsys, "train", ROOT / "params/examples/mnist_smoke.yaml", "--out", out, "--quiet",
        "--set", "lr=1000", "--set", "warmup_epochs=0", "--set", "epochs=1",
    )  # fmt: skip
    line = one_error_line(err, "train")
    assert code == 2 and "epoch 1, step" in line and "loss is not finite" in line and str(out) in line
    metrics = records.read_metrics(out)
    assert metrics["finished"] is False and metrics["failed"]["epoch"] == 1 and not records.is_finished(out)


def test_non_finite_loss_after_a_good_epoch_keeps_its_checkpoint(tmp_path, monkeypatch):
    from ipslib.engine import steps

    engine.train(tiny(), tmp_path, progress=False, stop_after_epoch=1)
    real = steps._forward_losses

    def poisoned(*args, **kwargs):
        losses, logits = real(*args, **kwargs)
        return {**losses, "loss": losses["loss"] * float("nan")}, logits

    monkeypatch.setattr(steps, "_forward_losses", poisoned)
    with pytest.raises(NonFiniteError, match=r"epoch 2, step 3 \(batch 1 of 2"):
        engine.train(tiny(), tmp_path, progress=False)
    assert checkpoint.load_checkpoint(tmp_path / records.CHECKPOINT_FILE)["epoch"] == 1  # the last good one
    metrics = records.read_metrics(tmp_path)
    assert not metrics["finished"] and metrics["failed"]["step"] == 3 and "not finite" in metrics["failed"]["error"]


def test_non_finite_gradient_names_the_parameter_and_changes_nothing():
    from ipslib.engine.steps import Context, gradient_step, select_batch
    from ipslib.model.ips import IPSNet

    cfg = tiny()
    torch.manual_seed(0)
    net = IPSNet.from_config(cfg).train()
    name, param = next(iter(net.named_parameters()))
    param.register_hook(lambda grad: grad * float("inf"))
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    ctx = Context(cfg, torch.device("cpu"))
    selection = select_batch(net, torch.rand(2, 1, 140, 140), ctx)
    targets = {t: torch.zeros(2, dtype=torch.long) for t in ("majority", "max", "top")} | {"multi": torch.zeros(2, 10)}
    with pytest.raises(NonFiniteError, match=f"gradient of {name} is not finite"):
        gradient_step(net, engine.build_optimizer(net, cfg), selection, targets, ctx, lr=1e-3)
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())


# ------------------------------------------------------------------------------------------ 2. checkpoints
def _flip_tensor_bytes(path: Path) -> None:
    """Flip two bytes in the middle of the largest tensor record of a torch zip checkpoint."""
    with zipfile.ZipFile(path) as zipped:
        info = max((i for i in zipped.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = (
        int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little"),
        int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little"),
    )
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[start] ^= 0x5A
    data[start + 1] ^= 0xA5
    path.write_bytes(bytes(data))


def test_flipped_bytes_are_an_error_and_resume_falls_back_to_the_previous_checkpoint(tmp_path, reference, capsys):
    engine.train(tiny(), tmp_path, progress=False, stop_after_epoch=1)
    path = tmp_path / records.CHECKPOINT_FILE
    checkpoint.write_checkpoint(path, checkpoint.load_checkpoint(path))  # epoch 1 twice: checkpoint + prev
    _flip_tensor_bytes(path)
    torch.load(path, weights_only=True)  # torch alone does not notice
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: content hash mismatch"):
        checkpoint.load_checkpoint(path)
    code, err = run_cli(capsys, "predict", tmp_path, "--mnist-index", "0", "--out", tmp_path / "pred")
    assert code == 2 and str(path) in one_error_line(err, "predict") and "damaged" in err
    with pytest.warns(UserWarning, match=r"content hash mismatch.*moved it to checkpoint\.damaged\.pt"):
        engine.train(tiny(), tmp_path, progress=False)
    assert (tmp_path / checkpoint.DAMAGED_FILE).is_file() and not (tmp_path / checkpoint.PREVIOUS_FILE).exists()
    assert_same_outcome(tmp_path, reference)


@pytest.mark.parametrize("damage", ["truncated", "malicious", "both damaged"])
def test_unusable_checkpoints_on_resume_name_the_file(tmp_path, capsys, damage):
    params = params_file(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["train", str(params), "--out", str(out), "--quiet", "--stop-after-epoch", "1"]) == 0
    path = out / records.CHECKPOINT_FILE
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "malicious":
        torch.save({"model": {}, "payload": _Exploit(tmp_path / "exploited")}, path)  # loading would run a command
    else:
        checkpoint.write_checkpoint(path, checkpoint.load_checkpoint(path))
        _flip_tensor_bytes(path)
        _flip_tensor_bytes(out / checkpoint.PREVIOUS_FILE)
    code, err = run_cli(capsys, "train", params, "--out", out, "--quiet")
    line = one_error_line(err, "train")
    assert code == 2 and str(out) in line and "--force" in line
    assert not (tmp_path / "exploited").exists()


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_stale_temporary_files_are_removed_on_the_next_start(tmp_path):
    engine.train(tiny(), tmp_path, progress=False, stop_after_epoch=1)
    stale = tmp_path / ".checkpoint.pt.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    lines = []
    engine.train(tiny(), tmp_path, progress=False, stop_after_epoch=1, log=lines.append)
    assert not stale.exists() and any("removed .checkpoint.pt.0123456789ab.tmp" in line for line in lines)


# ----------------------------------------------------------------------------------------------- kills
KILLER = """
import os, signal, sys
import torch
from ipslib.config import RunConfig
from ipslib.engine import training
after = int(sys.argv[2])
calls = [0]
def dying(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == after:  # the temporary file is complete but not yet renamed, or the rename is next
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call
os.fsync, os.replace = dying(os.fsync), dying(os.replace)
torch.set_num_threads(1)
training.train(RunConfig.from_flat(eval(sys.argv[3])), sys.argv[1], progress=False)
"""


def _killed_run(run_dir: Path, after: int) -> int:
    return subprocess.run([sys.executable, "-c", KILLER, str(run_dir), str(after), repr(TINY)], cwd=ROOT).returncode


def test_kills_inside_writes_and_at_a_random_time_lose_nothing(tmp_path, reference):
    rng = np.random.default_rng(14)
    run_dir = tmp_path / "run"
    for after in rng.integers(1, 8, size=2):  # a save makes 7 such calls; each resume starts counting again
        assert _killed_run(run_dir, int(after)) == -signal.SIGKILL
        for name in (records.CONFIG_FILE, records.METRICS_FILE):  # what is there is whole
            if (run_dir / name).exists():
                records.read_config(run_dir) if name == records.CONFIG_FILE else records.read_metrics(run_dir)
    assert list(run_dir.glob(".*.tmp"))  # the last kill came between a complete temporary file and its rename
    process = subprocess.Popen([sys.executable, "-c", KILLER, str(run_dir), "0", repr(TINY)], cwd=ROOT)
    time.sleep(float(rng.uniform(2.0, 3.0)))  # the imports take about 2 s: the kill lands while it trains
    process.kill()
    process.wait()
    engine.train(tiny(), run_dir, progress=False)
    assert_same_outcome(run_dir, reference)
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / records.LOCK_FILE).exists()


# ----------------------------------------------------------------------------------------------- locks
HOLDER = """
import sys, time
from ipslib.system.files import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_naming_the_holder_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    params = params_file(tmp_path)
    out = tmp_path / "run"
    assert cli.main(["train", str(params), "--out", str(out), "--quiet", "--stop-after-epoch", "1"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    holder = _holder(out / records.LOCK_FILE, 60)
    try:
        code, err = run_cli(capsys, "train", params, "--out", out, "--set", "lr=0.01", "--force")
        line = one_error_line(err, "train")
        assert code == 2 and f"in use by process {holder.pid}" in line and "--force does not override" in line
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != records.LOCK_FILE} == before
        with pytest.raises(LockHeld) as held:
            engine.train(tiny(), out, progress=False)
        assert held.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert (out / records.LOCK_FILE).read_text().strip() == str(holder.pid)  # left behind by the kill
    lines = []
    engine.train(tiny(), out, progress=False, log=lines.append)
    assert f"took over the lock left by process {holder.pid}" in lines[0] and records.is_finished(out)


def test_wait_blocks_until_the_other_process_is_done(tmp_path):
    holder = _holder(tmp_path / records.LOCK_FILE, 1.0)
    start = time.perf_counter()
    engine.train(tiny(epochs=1), tmp_path, progress=False, stop_after_epoch=0, wait=True)
    assert time.perf_counter() - start > 0.5 and holder.wait() == 0


WRITER = """
import sys
from ipslib.study.status import update_status
for i in range(int(sys.argv[2])):
    update_status("cpu", f"{sys.argv[1]}-{i}", lambda previous: {"n": len(previous)})
"""


def test_concurrent_status_writers_lose_nothing(tmp_path):
    env = {**os.environ, "IPSLIB_ROOT": str(tmp_path)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, "300"], env=env) for name in "ab"]
    assert [w.wait() for w in writers] == [0, 0]
    status = json.loads((tmp_path / "outputs" / "cpu" / "status.json").read_text())
    assert len(status) == 600 and not list((tmp_path / "outputs" / "cpu").glob(".*"))


# -------------------------------------------------------------------------------------- 4. determinism
def test_same_key_same_numbers_and_threads_are_part_of_the_key(tmp_path, reference):
    engine.train(tiny(), tmp_path, progress=False)
    assert_same_outcome(tmp_path, reference)
    assert tiny(threads=2).key() != tiny().key() and tiny(device="auto").key() == tiny().key()


def test_run_trains_with_each_configs_threads_whatever_the_jobs(tmp_path, monkeypatch):
    from ipslib.study import runner
    from ipslib.study.experiments import RunSpec

    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    calls = []
    monkeypatch.setattr(runner.subprocess, "call", lambda command, **kw: calls.append((command, kw["env"])) or 0)
    specs = [RunSpec("e", "cpu", f"e/{t}", tiny(threads=t), {}, 0, tmp_path) for t in (1, 3)]
    for jobs in (1, 2):
        runner.train_runs(specs, jobs=jobs, echo=lambda line: None)
    commands = [(" ".join(c[4:]), env.get("OMP_NUM_THREADS")) for c, env in calls]
    assert all("threads=" not in command and "--wait" in command for command, _ in commands)
    assert sorted(commands[:2]) == sorted(commands[2:]) and {t for _, t in commands} == {"1", "3"}


def test_rekey_moves_old_records_to_their_new_keys(tmp_path, monkeypatch):
    from ipslib.engine.migrate import rekey_runs
    from ipslib.study.status import read_status, update_status

    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    cfg = tiny(epochs=1)
    old_key = cfg.key(exclude=("device", "num_workers", "threads", "memory_budget_mb"))  # the key before issue 14
    runs = tmp_path / "outputs" / "cpu" / "runs"
    old_dir = runs / old_key
    engine.train(cfg, old_dir, progress=False)
    text = (old_dir / records.CONFIG_FILE).read_text().replace(cfg.key(), old_key)
    (old_dir / records.CONFIG_FILE).write_text(text)
    metrics = records.read_metrics(old_dir) | {"config_key": old_key}
    (old_dir / records.METRICS_FILE).write_text(json.dumps(metrics))
    payload = checkpoint.load_checkpoint(old_dir / records.CHECKPOINT_FILE) | {"config_key": old_key}
    atomic_write_bytes(old_dir / records.CHECKPOINT_FILE, records.torch_bytes(payload))  # no hash, as before
    update_status("cpu", "e", lambda previous: {"train_seconds": {old_key: 1.5}})
    assert cli.main(["runs", "--rekey", "--profile", "cpu"]) == 0
    new_dir = runs / cfg.key()
    assert not old_dir.exists() and records.is_finished(new_dir, cfg)
    assert (new_dir / records.CONFIG_FILE).read_text().startswith(f"# ipslib run config; config_key: {cfg.key()}\n")
    assert read_status("cpu")["e"]["train_seconds"] == {cfg.key(): 1.5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the hash was added
        assert checkpoint.load_checkpoint(new_dir / records.CHECKPOINT_FILE)["config_key"] == cfg.key()
    assert rekey_runs(runs) == []  # done once


# ------------------------------------------------------------------------------------ 5. one error style
def _project(tmp_path: Path, monkeypatch, **files: str) -> Path:
    (tmp_path / "params").mkdir()
    shutil.copy(ROOT / "params" / "_defaults.yaml", tmp_path / "params")
    shutil.copytree(ROOT / "book" / "templates", tmp_path / "book" / "templates")
    for name, text in files.items():
        (tmp_path / "params" / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("IPSLIB_ROOT", str(tmp_path))
    return tmp_path


GOOD = """title: Good
family: megapixel_mnist
profiles:
  smoke: {fixed: {n_train: 8, n_test: 4}}
  cpu: {runs: false}
  paper: {runs: false}
"""


def test_truncated_metrics_json_is_named_and_stops_nothing(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, monkeypatch, good=GOOD)
    from ipslib.study.experiments import load_experiments

    (spec,) = load_experiments(root)["good"].runs("smoke")
    records.write_config(spec.run_dir, spec.config)
    (spec.run_dir / records.METRICS_FILE).write_text('{"last": {"epoch": 1, "tr')
    with pytest.raises(RecordError, match=r"metrics\.json: not valid JSON"):
        records.read_metrics(spec.run_dir)
    assert cli.main(["runs", "--profile", "smoke"]) == 0
    out, err = capsys.readouterr()
    assert "todo" in out and f"{spec.run_dir / records.METRICS_FILE}: not valid JSON" in err


def test_a_malformed_params_file_affects_only_its_experiment(tmp_path, monkeypatch, capsys):
    _project(tmp_path, monkeypatch, good=GOOD, bad=GOOD.replace("n_train: 8", "n_train: [8"))
    from ipslib.study import runner

    assert cli.main(["runs", "--profile", "smoke"]) == 0
    out, err = capsys.readouterr()
    assert "good/default" in out and "bad.yaml" in err
    code, err = run_cli(capsys, "run", "bad", "--profile", "smoke")
    assert code == 2 and "bad.yaml: not valid YAML" in one_error_line(err, "run")
    monkeypatch.setattr(runner, "train_runs", lambda specs, **kw: [])
    monkeypatch.setattr(runner, "run_experiment", lambda exp, *a, **kw: {"status": "ok", "failed": []})
    status = runner.run_all("smoke", echo=lambda line: None)
    assert status["good"]["status"] == "ok" and "bad.yaml" in status["bad"]["error"]


def test_a_full_disk_names_the_file_and_the_space_needed(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFull, match=rf"{target}: no space left on the device \(it needs 2\.0 KiB; .* free"):
        atomic_write_bytes(target, b"x" * 2048)
    assert target.read_text() == "old" and not list(tmp_path.glob(".*.tmp"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (skipped where the machine does not allow mounting)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not permitted'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_tmpfs_stops_training_with_one_line_and_the_run_resumes(tiny_disk, tmp_path, capsys):
    params = params_file(tmp_path, epochs=1)
    out = tiny_disk / "run"
    code, err = run_cli(capsys, "train", params, "--out", out, "--quiet")
    line = one_error_line(err, "train")
    assert code == 2 and f"{out / records.CHECKPOINT_FILE}: no space left on the device (it needs" in line
    assert not list(out.glob(".*.tmp")) and records.read_config(out) == tiny(epochs=1)
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # on a bigger disk the same run directory resumes and finishes
    assert cli.main(["train", str(params), "--out", str(moved), "--quiet"]) == 0 and records.is_finished(moved)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("model") / "run"
    torch.set_num_threads(1)
    engine.train(tiny(epochs=1), run_dir, progress=False)
    return run_dir


def _huge_tiff(path: Path) -> None:
    import tifffile

    tifffile.imwrite(path, np.zeros((64, 64), np.uint8), tile=(16, 16))
    with tifffile.TiffFile(path, mode="r+b") as tiff:
        tiff.pages[0].tags["ImageWidth"].overwrite(2**31)
        tiff.pages[0].tags["ImageLength"].overwrite(2**31)


BAD_IMAGES = {
    "empty.npy": (lambda p: p.write_bytes(b""), "cannot be read as a numpy array"),
    "empty.png": (lambda p: p.write_bytes(b""), "cannot be read as a PNG"),
    "text.png": (lambda p: p.write_text("not an image"), "not a PNG"),
    "int64.npy": (lambda p: np.save(p, np.ones((56, 56), np.int64)), "pixel type int64 is not supported"),
    "bytes.npy": (lambda p: np.save(p, np.full((56, 56), 200.0, np.float32)), "float pixels must lie in [0, 1]"),
    "nan.npy": (lambda p: np.save(p, np.where(np.eye(56) > 0, np.nan, 0.5).astype(np.float32)), "NaN or infinite"),
    "huge.tif": (_huge_tiff, f"declares 2147483648 x 2147483648 pixels, which needs {(2**31 // 16) ** 2} segments"),
}


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_predict_refuses_bad_images_naming_them(model_dir, tmp_path, capsys, name):
    write, message = BAD_IMAGES[name]
    path = tmp_path / name
    write(path)
    code, err = run_cli(capsys, "predict", model_dir, "--image", path, "--out", tmp_path / "out")
    line = one_error_line(err, "predict")
    assert code == 2 and str(path) in line and message in line and not (tmp_path / "out").exists()


def test_predict_out_naming_a_file_and_strict_json(model_dir, tmp_path, capsys):
    from ipslib.cli.predict import finite_json

    image = tmp_path / "ok.npy"
    np.save(image, np.zeros((56, 56), np.uint8))
    (tmp_path / "file").write_text("")
    code, err = run_cli(capsys, "predict", model_dir, "--image", image, "--out", tmp_path / "file")
    assert code == 2 and "--out" in one_error_line(err, "predict") and "is a file" in err
    assert cli.main(["predict", str(model_dir), "--image", str(image), "--out", str(tmp_path / "pred")]) == 0

    def refuse(constant):
        raise ValueError(f"{constant} in prediction.json")

    json.loads((tmp_path / "pred" / "prediction.json").read_text(), parse_constant=refuse)
    assert finite_json({"p": [0.5, float("nan")], "s": (float("inf"), 1)}) == {"p": [0.5, None], "s": [None, 1]}


def test_train_out_naming_a_file_and_an_empty_params_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, err = run_cli(capsys, "train", params_file(tmp_path), "--out", tmp_path / "file")
    assert code == 2 and f"{tmp_path / 'file'}: is a file" in one_error_line(err, "train")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    code, err = run_cli(capsys, "train", tmp_path / "empty.yaml", "--out", tmp_path / "run")
    assert code == 2 and "empty.yaml: the params file sets no keys" in one_error_line(err, "train")
    assert not (tmp_path / "run").exists()


def test_grids_that_drop_pixels_or_select_nothing_are_refused_or_warned(tmp_path):
    from ipslib.config.grid import grid_warnings

    with pytest.raises(ConfigError, match=r"patch_size=30 .* last 20 row\(s\) and 20 column\(s\) are never seen"):
        tiny(patch_size=30)  # a digit could sit in the strip: the labels would be wrong
    traffic = RunConfig.from_flat(
        dataset="synthetic_traffic",
        image_height=128,
        image_width=160,
        sign_min_size=24,
        sign_max_size=32,
        patch_size=64,
    )
    assert "last 0 row(s) and 32 column(s)" in grid_warnings(traffic)[0]
    with pytest.warns(UserWarning, match=r"memory_size=25 >= N=25 patches: every patch is kept"):
        engine.train(tiny(memory_size=25), tmp_path, progress=False, stop_after_epoch=0)
    assert grid_warnings(tiny()) == [] and grid_warnings(tiny(memory_size=25, selection="all")) == []


def _traffic_set(set_dir: Path, names: list[str]) -> None:
    from PIL import Image

    set_dir.mkdir(parents=True)
    (set_dir / "annotations.txt").write_text("".join(f"{name}:\n" for name in names))
    for k, name in enumerate(names):
        Image.fromarray(np.full((48, 64, 3), 40 * k, np.uint8)).save(set_dir / name, quality=90)


@pytest.mark.filterwarnings("ignore:.*differs from the published:UserWarning")
def test_a_truncated_traffic_jpeg_mid_epoch_names_the_file(tmp_path):
    from torch.utils.data import DataLoader

    from ipslib.data.traffic_signs import TrafficSigns

    _traffic_set(tmp_path / "Set1", [f"a{k}.jpg" for k in range(4)])
    _traffic_set(tmp_path / "Set2", ["b0.jpg"])
    bad = tmp_path / "Set1" / "a2.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    data = TrafficSigns({"root": str(tmp_path), "subset_fraction": 1.0, "image_height": 48, "image_width": 64})
    with pytest.raises(DataError, match=rf"{bad}: cannot decode the image .* truncated or damaged"):
        for _ in DataLoader(data, batch_size=1):
            pass


def test_conflicting_duplicate_annotation_lines_are_an_error_naming_both():
    from ipslib.data.traffic_annotations import parse_annotations

    sign = "VISIBLE, 30, 20, 10, 8, PROHIBITORY, 50_SIGN"
    assert len(parse_annotations(f"a.jpg:{sign}\nb.jpg:\na.jpg:{sign}\n")) == 3  # identical repeats are kept
    with pytest.raises(DataError, match=r"lines 1 and 3: a\.jpg is annotated twice .*class 50 vs class no-sign"):
        parse_annotations(f"a.jpg:{sign}\nb.jpg:\na.jpg:\n", source="annotations.txt")


def test_traffic_archives_are_checked_where_their_md5_is_known(tmp_path, monkeypatch):
    from ipslib.data import traffic_fetch
    from ipslib.system.files import file_md5

    archive = tmp_path / "Set1Part0.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("Set1Part0/a.jpg", b"jpeg")
    monkeypatch.setitem(traffic_fetch.KNOWN_MD5, "Set1Part0.zip", None)
    with pytest.warns(UserWarning, match=rf"its md5 is {file_md5(archive)}: record it as KNOWN_MD5\['Set1Part0.zip'\]"):
        traffic_fetch.check_archive(archive, "URL")
    monkeypatch.setitem(traffic_fetch.KNOWN_MD5, "Set1Part0.zip", "0" * 32)
    with pytest.raises(DataError, match=r"URL: md5 [0-9a-f]{32}, expected 0{32}"):
        traffic_fetch.check_archive(archive, "URL")
    monkeypatch.setitem(traffic_fetch.KNOWN_MD5, "Set1Part0.zip", file_md5(archive))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traffic_fetch.check_archive(archive, "URL")


def test_a_corrupt_mnist_cache_is_repaired_with_an_announcement(tmp_path, monkeypatch):
    import hashlib

    from ipslib.data import mnist

    good = tmp_path / "good"
    for split, (images_name, labels_name) in mnist.MNIST_FILES.items():
        images, labels, _ = mnist.load_sample(split)
        mnist.write_idx(good / images_name, images)
        mnist.write_idx(good / labels_name, labels)
    monkeypatch.setattr(
        mnist, "MNIST_MD5", {n: hashlib.md5((good / n).read_bytes()).hexdigest() for n in mnist.MNIST_MD5}
    )
    monkeypatch.setattr(mnist, "SOURCES", {"local folder": mnist._from_local, "stub": lambda cache, work: good})
    cache = mnist.mnist_dir(tmp_path / "root")
    cache.mkdir(parents=True)
    for name in mnist.MNIST_MD5:
        (cache / name).write_bytes((good / name).read_bytes())
    (cache / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + b"\0" * 12)
    with pytest.warns(UserWarning, match=r"t10k-labels-idx1-ubyte failed their md5 check .* from stub"):
        mnist.load_mnist("test", tmp_path / "root")
