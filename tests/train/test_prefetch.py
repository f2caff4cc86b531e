"""The background batch prefetcher (--workers 0): same batches in the same order, errors raised, no hang, and a
seeded run gives the same weights twice."""

from __future__ import annotations

import threading

import pytest
import torch

from finegrain.artifact import read_artifact
from finegrain.data.prefetch import Prefetcher


def test_prefetcher_yields_the_same_items_in_order():
    items = [torch.full((2,), i) for i in range(20)]
    assert [int(x[0]) for x in Prefetcher(items, depth=3)] == list(range(20))
    assert len(Prefetcher(items)) == 20


def test_prefetcher_raises_the_loader_error_and_stops_its_thread_on_early_exit():
    def broken():
        yield 1
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        list(Prefetcher(broken()))
    before = threading.active_count()
    for i in Prefetcher(range(1000), depth=1):
        if i == 3:
            break
    assert threading.active_count() == before  # no producer left blocked on a full queue


@pytest.mark.slow
def test_a_seeded_run_with_in_process_loading_is_deterministic(class_folder, tmp_path, train_cli):
    args = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "8", "--p", "3", "--k", "2",
            "--steps-per-epoch", "6", "--epochs", "2", "--val", "0", "--workers", "0", "--threads", "2",
            "--no-progress", "--augment", "light", "--seed", "4"]
    for name in ("a", "b"):
        train_cli(class_folder, tmp_path / name, *args, timeout=120)
    a = read_artifact(tmp_path / "a" / "model.safetensors").sub("model")
    b = read_artifact(tmp_path / "b" / "model.safetensors").sub("model")
    assert all(torch.equal(a[k], b[k]) for k in a)
