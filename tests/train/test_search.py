"""--time-budget: the search is deterministic for a seed, resumes after a SIGKILL, and the whole command
ends within the budget plus one epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finegrain.cli import main
from finegrain.config import TrainConfig
from finegrain.train import space

pytestmark = pytest.mark.slow

ARGS = ["--epochs", "3", "--threads", "1", "--workers", "0", "--no-progress", "--seed", "7", "--val", "0.5"]


def _trials(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "search.jsonl").read_text().splitlines() if line]
    return [{k: r[k] for k in ("trial", "state", "value", "params", "epochs")} for r in rows]


@pytest.fixture(scope="module")
def data(tmp_path_factory, class_folder_factory):
    return class_folder_factory(tmp_path_factory.mktemp("search") / "d", classes=20, per_class=10, size=24)


def _cli(data, out, *extra):
    return [sys.executable, "-m", "finegrain.cli", "train", str(data), "--out", str(out), "--time-budget", "10m",
            "--search-trials", "4", *ARGS, *extra]


def test_the_search_is_deterministic_for_a_seed_and_resumes_after_a_sigkill(data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("a", "b"):
        subprocess.run(_cli(data, tmp_path / name), check=True, capture_output=True, env=env, timeout=600)
    first, second = _trials(tmp_path / "a"), _trials(tmp_path / "b")
    assert len(first) == 4 and first == second
    assert first[0]["params"] == space.params_of(TrainConfig(data="x").validate())  # trial 0: the defaults
    summary = json.loads((tmp_path / "a" / "search" / "summary.json").read_text())
    assert summary["chosen"]["params"] in [t["params"] for t in first]
    assert (tmp_path / "a" / "search.png").stat().st_size > 0 and (tmp_path / "a" / "model.safetensors").exists()

    # Killed while trial 1 trains (its folder has a checkpoint), then resumed: the same trials, the same choice.
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(data, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not (killed / "search" / "trial-001" / "checkpoint.safetensors").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists()
    subprocess.run(_cli(data, killed, "--resume"), check=True, capture_output=True, env=env, timeout=600)
    assert _trials(killed) == first
    resumed = json.loads((killed / "search" / "summary.json").read_text())["chosen"]
    # The same trial and settings; how many final epochs fit the time left depends on the machine's speed.
    assert {k: v for k, v in resumed.items() if k != "epochs"} == {k: v for k, v in summary["chosen"].items()
                                                                 if k != "epochs"}


def test_a_60_second_budget_ends_within_60_seconds_and_one_epoch(tmp_path, class_folder_factory):
    data = class_folder_factory(tmp_path / "d", classes=40, per_class=10, size=48)
    run = tmp_path / "run"
    started = time.time()
    subprocess.run([sys.executable, "-m", "finegrain.cli", "train", str(data), "--out", str(run), "--time-budget",
                    "60s", "--epochs", "30", "--patience", "100", "--val", "0.3", "--threads", "2", "--workers", "0",
                    "--no-progress"], check=True, capture_output=True, timeout=300)
    elapsed = time.time() - started
    epochs = [json.loads(line)["epoch_seconds"] for log in run.rglob("metrics.jsonl")
              for line in log.read_text().splitlines() if line]
    assert elapsed <= 60 + max(epochs) + 8, (elapsed, max(epochs))  # 8 s: starting Python, importing torch
    summary = json.loads((run / "search" / "summary.json").read_text())
    final_epochs = len((run / "metrics.jsonl").read_text().splitlines())
    # The budget was used, not skipped: the run went on to near its end, or ended sooner because the chosen
    # settings trained every epoch planned for them and no further trial could have finished in the search's time.
    assert elapsed >= 50 or final_epochs == summary["chosen"]["epochs"], (elapsed, final_epochs, summary["chosen"])
    # Trial 0 at least; more only if the time left after it holds more than its settings' full 30 epochs.
    assert len(summary["trials"]) >= 1 and (run / "model.safetensors").exists()


def test_without_a_validation_split_the_budget_trains_the_given_settings(tmp_path, class_folder_factory, capsys):
    data = class_folder_factory(tmp_path / "tiny", classes=3, per_class=3)
    assert main(["train", str(data), "--out", str(tmp_path / "r"), "--time-budget", "20s", "--epochs", "2",
                 "--backbone", "conv4", "--image-size", "16", "--no-progress", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "nothing to choose settings by" in captured.err
    assert json.loads(captured.out)["search"]["trials"] == []


def test_the_search_stops_when_the_time_left_only_holds_the_best_settings_full_training():
    from finegrain.train.search import PLANNED, SEARCH_SHARE, search_end

    # No finished trial yet: the search may use its share of the budget.
    assert search_end(1000.0, 600.0, 60, None) == 1000.0 + SEARCH_SHARE * 600
    # A fast best trial (1 s an epoch, 60 epochs ≈ 63 s): the share is the limit.
    assert search_end(1000.0, 600.0, 60, 1.0) == 1000.0 + SEARCH_SHARE * 600
    # A slow one (9 s an epoch: 568 s for 60 epochs): the search ends at once, leaving the full training.
    end = search_end(1000.0, 600.0, 60, 9.0)
    assert end == pytest.approx(1000.0 + 600 - 9.0 * 60 / PLANNED) and end < 1000.0 + SEARCH_SHARE * 600


def test_no_trial_starts_that_could_not_finish_before_the_search_ends():
    from finegrain.train.search import room_for_a_trial

    assert room_for_a_trial(1000.0, 1010.0, 20, None)  # no pace known yet: the first trial always starts
    assert not room_for_a_trial(1010.0, 1010.0, 20, None)  # unless the search has already ended
    assert room_for_a_trial(1000.0, 1030.0, 3, 10.0)  # 3 epochs of 10 s fit in 30 s
    assert not room_for_a_trial(1000.0, 1029.0, 3, 10.0)  # one second short: it would be cut and thrown away


def test_a_trial_must_beat_the_given_settings_by_more_than_their_standard_error(tmp_path):
    import optuna

    from finegrain.train.search import _best_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def study_with(values: list[float]):
        study = optuna.create_study(direction="maximize")
        for value in values:
            study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=value))
        return study

    trial0 = tmp_path / "trial-000"
    trial0.mkdir()
    rows = [{"epoch": 0, "val_pearson": 0.70, "val_pearson_se": 0.036}, {"epoch": 1, "val_pearson": 0.80,
                                                                         "val_pearson_se": 0.03}]
    (trial0 / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # 0.828 is 0.028 ahead of trial 0's 0.80, inside its standard error at that epoch (0.03): trial 0 is kept.
    assert _best_trial(study_with([0.80, 0.828, 0.75]), "max", tmp_path, "val_pearson")[0] == 0
    # 0.84 is 0.04 ahead: beyond it, the better trial is chosen.
    assert _best_trial(study_with([0.80, 0.84, 0.75]), "max", tmp_path, "val_pearson")[0] == 1
    # A task that logs no standard error (MAP@R) keeps the plain best; so does a call without the folder.
    assert _best_trial(study_with([0.80, 0.828]), "max", tmp_path, "val_map_at_r")[0] == 1
    assert _best_trial(study_with([0.80, 0.828]), "max")[0] == 1
