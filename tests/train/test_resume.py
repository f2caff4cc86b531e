"""A killed run resumes from its checkpoint and ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import pytest
import torch

ARGS = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "16", "--p", "3", "--k", "4",
        "--steps-per-epoch", "25", "--val", "0", "--workers", "1", "--threads", "1", "--seed", "3",
        "--no-progress", "--augment", "light"]


def _weights(run):
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_killed_then_resumed_run_matches_uninterrupted_run(class_folder, tmp_path, train_cli,
                                                            kill_at_first_checkpoint):
    def _train(data, out, *extra, wait=True):
        return train_cli(data, out, *ARGS, *extra, wait=wait, timeout=240)

    _train(class_folder, tmp_path / "straight", "--epochs", "3")

    killed = tmp_path / "killed"
    kill_at_first_checkpoint(_train(class_folder, killed, "--epochs", "3", wait=False), killed, timeout=240)
    epochs_before = torch.load(killed / "checkpoint.pt", weights_only=False)["epoch"]
    assert epochs_before < 2

    _train(class_folder, killed, "--resume")
    straight, resumed = _weights(tmp_path / "straight"), _weights(killed)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    history = [line for line in (killed / "metrics.jsonl").read_text().splitlines() if line]
    assert len(history) == 3  # no duplicate epoch lines from the killed attempt


def test_resume_without_checkpoint_and_reused_out_are_clear_errors(class_folder, tmp_path):
    from finegrain.cli import main

    assert main(["train", str(class_folder), "--out", str(tmp_path / "none"), "--resume"]) == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    assert main(["train", str(class_folder), "--out", str(run)]) == 2
