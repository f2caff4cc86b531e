"""Multi-process training: sharded batches, a 2-process gloo run, a killed worker resumed."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from finegrain.cli import main
from finegrain.data import PKSampler, ShardedBatchSampler
from finegrain.encoders import load_encoder

ARGS = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "8", "--p", "3", "--k", "2",
        "--val", "0", "--workers", "0", "--threads", "1", "--no-progress", "--augment", "none", "--seed", "5",
        "--device", "cpu"]  # gloo on the CPU, also on a machine with one GPU (NCCL needs a GPU per process)


@pytest.mark.parametrize("world", [2, 3])
def test_shards_are_disjoint_and_cover_every_draw_once(world):
    labels = np.repeat(np.arange(12), 5)
    pk = PKSampler(labels, p=4, k=2, length_before_new_iter=len(labels), seed=7)
    base = [list(b) for b in BatchSampler(pk, batch_size=8, drop_last=True)]
    steps = len(base) // world
    shards = [list(ShardedBatchSampler(BatchSampler(PKSampler(labels, p=4, k=2, length_before_new_iter=len(labels),
                                                              seed=7), 8, True), r, world, steps))
              for r in range(world)]
    assert all(len(s) == steps for s in shards)
    positions = [{i for i, b in enumerate(base) if b in shard} for shard in shards]
    for a in range(world):
        for b in range(a + 1, world):
            assert not positions[a] & positions[b]  # no batch drawn by two ranks
    # Plain shuffling draws each index once per epoch: across the ranks, still once.
    drawn = [i for r in range(world) for batch in ShardedBatchSampler(
        BatchSampler(RandomSampler(range(60), generator=torch.Generator().manual_seed(3)), 10, True), r, world,
        60 // 10 // world) for i in batch]
    assert len(drawn) == len(set(drawn)) == (60 // 10 // world) * world * 10


def test_processes_zero_and_unknown_device_are_named_errors(class_folder, tmp_path, capsys):
    assert main(["train", str(class_folder), "--out", str(tmp_path / "a"), "--processes", "0"]) == 2
    assert "--processes must be at least 1" in capsys.readouterr().err
    assert main(["train", str(class_folder), "--out", str(tmp_path / "b"), "--device", "tpu"]) == 2
    assert "--device must be one of" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without a GPU")
def test_device_cuda_without_a_gpu_is_one_line_and_writes_nothing(class_folder, tmp_path, capsys):
    assert main(["train", str(class_folder), "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device cuda" in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_two_process_gloo_training_completes_and_its_model_loads(class_folder, tmp_path, train_cli):
    run = tmp_path / "run"
    started = time.time()
    train_cli(class_folder, run, *ARGS, "--epochs", "2", "--steps-per-epoch", "4", "--processes", "2", timeout=120)
    assert time.time() - started < 60
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["world_size"] for r in rows] == [2, 2]
    assert all(r["steps"] == 2 for r in rows)  # 4 batches an epoch, 2 per rank
    encoder = load_encoder(run)
    vectors = encoder.encode_array(np.zeros((2, 16, 16, 3), dtype=np.uint8))
    assert vectors.shape == (2, 8) and np.isfinite(vectors).all()


def _workers(pid: int) -> list[int]:
    """The spawned training processes of a launcher (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the workers through /proc (Linux)")
def test_a_killed_worker_stops_the_run_and_resume_finishes_it(class_folder, tmp_path, train_cli):
    run = tmp_path / "run"
    proc = train_cli(class_folder, run, *ARGS, "--epochs", "4", "--steps-per-epoch", "120", "--processes", "2",
                     wait=False)
    deadline = time.time() + 120
    while not (run / "checkpoint.safetensors").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "killed by SIGKILL" in err.decode() and "--resume" in err.decode()
    assert not (run / "model.safetensors").exists()
    train_cli(class_folder, run, "--resume", "--no-progress", timeout=180)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3] and {r["world_size"] for r in rows} == {2}
    assert (run / "model.safetensors").exists()
