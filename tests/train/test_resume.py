"""A killed run resumes from its checkpoint and ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import pickle

import pytest
import torch

from finegrain.artifact import read_artifact, read_manifest
from finegrain.cli import main

ARGS = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "16", "--p", "3", "--k", "4",
        "--steps-per-epoch", "25", "--val", "0", "--workers", "1", "--threads", "1", "--seed", "3",
        "--no-progress", "--augment", "light"]


def _weights(run):
    return read_artifact(run / "model.safetensors").sub("model")


@pytest.mark.slow
def test_killed_then_resumed_run_matches_uninterrupted_run(class_folder, tmp_path, train_cli,
                                                            kill_at_first_checkpoint):
    def _train(data, out, *extra, wait=True):
        return train_cli(data, out, *ARGS, *extra, wait=wait, timeout=240)

    _train(class_folder, tmp_path / "straight", "--epochs", "3")

    killed = tmp_path / "killed"
    kill_at_first_checkpoint(_train(class_folder, killed, "--epochs", "3", wait=False), killed, timeout=240)
    epochs_before = read_manifest(killed / "checkpoint.safetensors")["epoch"]
    assert epochs_before < 2

    _train(class_folder, killed, "--resume")
    straight, resumed = _weights(tmp_path / "straight"), _weights(killed)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    history = [line for line in (killed / "metrics.jsonl").read_text().splitlines() if line]
    assert len(history) == 3  # no duplicate epoch lines from the killed attempt


def test_resume_without_checkpoint_and_reused_out_are_clear_errors(class_folder, tmp_path):
    assert main(["train", str(class_folder), "--out", str(tmp_path / "none"), "--resume"]) == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.safetensors").write_bytes(b"")
    assert main(["train", str(class_folder), "--out", str(run)]) == 2


FAST = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "8", "--p", "3", "--k", "2",
        "--steps-per-epoch", "2", "--val", "0", "--threads", "1", "--workers", "0", "--no-progress"]


def test_resume_with_different_flags_names_them_unless_overridden(class_folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(class_folder), "--out", str(run), "--epochs", "1", *FAST]) == 0
    capsys.readouterr()
    # Flags the run was started with, given again, are fine; runtime settings may change freely.
    assert main(["train", str(class_folder), "--out", str(run), "--resume", "--epochs", "1", "--threads", "2"]) == 0
    capsys.readouterr()
    assert main(["train", str(class_folder), "--out", str(run), "--resume", "--epochs", "2", "--lr", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 2" in err and "--lr 0.01" in err and "--override" in err and len(err.splitlines()) == 1
    assert "epochs: 1" in (run / "config.yaml").read_text()
    # With --override the new values win and are saved with the run: one more epoch is trained.
    assert main(["train", str(class_folder), "--out", str(run), "--resume", "--epochs", "2", "--override"]) == 0
    assert "epochs: 2" in (run / "config.yaml").read_text()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


class _Planted:
    """Unpickling this runs ``touch`` (what a malicious checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["checkpoint.safetensors", "model.safetensors"])
def test_a_planted_pickle_is_refused_without_running_it(class_folder, tmp_path, capsys, name):
    run = tmp_path / "run"
    assert main(["train", str(class_folder), "--out", str(run), "--epochs", "1", *FAST]) == 0
    capsys.readouterr()
    marker = tmp_path / "ran"
    for payload in (lambda f: pickle.dump(_Planted(marker), f), lambda f: torch.save({"x": _Planted(marker)}, f)):
        with (run / name).open("wb") as f:
            payload(f)
        argv = (["train", str(class_folder), "--out", str(run), "--resume"] if name.startswith("checkpoint")
                else ["eval", str(run), str(class_folder)])
        assert main(argv) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("finegrain ")]
        assert len(errors) == 1 and name in errors[0] and "Traceback" not in err
        # Even the converter, asked explicitly, refuses it: torch's restricted loader does not run it.
        assert main(["convert", str(run / name)]) == 2
        assert "cannot be converted safely" in capsys.readouterr().err
        assert not marker.exists()
