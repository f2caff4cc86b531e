"""``--time-budget``: search the space of ``space.py`` with Optuna, then train the best, inside the budget.

1. Search: trial 0 is the configuration as given (the defaults, usually); later trials are drawn by a TPE
   sampler. Each trial trains a third of the full epochs on the run's training split and reports its
   validation metric after every epoch to Optuna's successive-halving pruner, which stops weak trials early.
   The search ends at 40% of the budget, or earlier: as soon as the time left is only what the best trial's
   settings need to train their full epochs (at that trial's speed), so the choice is always trained to
   completion. A short budget on a large data set therefore searches little or nothing beyond trial 0.
2. Final: the best trial's model trained on (a warm restart of the schedule) for as many epochs as the time
   left holds, at most the full number; the model kept is that run's or, if better on validation, the best
   trial's own.

Everything lives in the run folder: ``search/journal.log`` (Optuna's journal, crash-safe), one folder per
trial, ``search.jsonl`` and ``search.png``. A killed search resumes with ``--resume``: the journal keeps
finished trials, a trial the kill interrupted is run again, and the clock continues from the time spent.
The sampler is reseeded from (seed, trial number) before each trial, so a seed gives the same sequence of
trials however often the search was interrupted; how many fit in the budget depends on the machine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from finegrain.artifact import read_manifest
from finegrain.config import TrainConfig, parse_duration
from finegrain.data import read_source
from finegrain.encoders import MODEL_FILE
from finegrain.errors import FinegrainError
from finegrain.train import space
from finegrain.train.fit import say
from finegrain.train.single import CONFIG_FILE, feasible_val, train_run
from finegrain.train.trainer import CHECKPOINT, TIME_UP
from finegrain.utils import atomic_write, atomic_write_text

SEARCH_DIR, CLOCK, CHOSEN = "search", "clock.json", "chosen.json"
SEARCH_SHARE = 0.4  # of the budget, for the search; the rest trains the chosen settings
TRIAL_SHARE = 3  # a trial trains 1/TRIAL_SHARE of the full epochs
PLANNED = 0.95  # of the time left, what the final run's epochs are planned to fill (epochs vary in length)


class _Clock:
    """Seconds spent on this run, kept on disk so a resumed run continues the budget instead of restarting it."""

    def __init__(self, path: Path):
        self.path = path
        spent = json.loads(path.read_text())["spent"] if path.exists() else 0.0
        self.started = time.time() - spent

    def spent(self) -> float:
        return time.time() - self.started

    def save(self, *_: Any) -> None:
        atomic_write_text(self.path, json.dumps({"spent": self.spent()}))


def _best_value(run: Path, monitor: str, mode: str) -> float | None:
    """The best validation value a finished run reached (its model keeps that epoch or a later one within the
    metric's standard error)."""
    log = run / "metrics.jsonl"
    if not (run / MODEL_FILE).exists() or not log.exists():
        return None
    values = [row[monitor] for line in log.read_text().splitlines() if line and monitor in (row := json.loads(line))]
    return (max if mode == "max" else min)(values) if values else None


def _kind(cfg: TrainConfig) -> str:
    return "label" if cfg.task == "embed" else "score"


def _cut_short(run: Path) -> bool:
    checkpoint = run / CHECKPOINT
    return checkpoint.exists() and read_manifest(checkpoint).get("stopped") == TIME_UP


def _study(folder: Path, cfg: TrainConfig, mode: str):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    study = optuna.create_study(study_name="finegrain", storage=storage, load_if_exists=True,
                                direction="maximize" if mode == "max" else "minimize",
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3))
    interrupted = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    for t in interrupted:  # killed mid-trial: run the same settings again, in the same place in the sequence
        study.enqueue_trial(t.params)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    if not study.trials:
        first = space.params_of(cfg)
        if first is not None:
            study.enqueue_trial(first)
    return study


def _kept(study) -> list:
    """The study's trials that ran or run: not those a kill interrupted (each was run again as a later one),
    nor one enqueued and not yet started."""
    from optuna.trial import TrialState

    return [t for t in study.trials if t.state not in (TrialState.FAIL, TrialState.WAITING)]


def _trial_row(index: int, t) -> dict[str, Any]:
    seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
    return {"trial": index, "state": t.state.name.lower(), "value": t.value if t.value is not None else
            (max(t.intermediate_values.values()) if t.intermediate_values else None), "params": t.params,
            "epochs": len(t.intermediate_values), "seconds": round(seconds, 1) if seconds else None}


def _write_report(run: Path, study, monitor: str) -> list[dict]:
    rows = [_trial_row(i, t) for i, t in enumerate(_kept(study))]
    atomic_write_text(run / "search.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _plot(rows, run / "search.png", monitor)
    return rows


def _plot(rows: list[dict], path: Path, monitor: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for state, colour in (("complete", "tab:blue"), ("pruned", "tab:grey"), ("running", "tab:orange")):
        picked = [r for r in rows if r["state"] == state and r["value"] is not None]
        ax.scatter([r["trial"] for r in picked], [r["value"] for r in picked], c=colour, label=state, s=24)
    ax.set(xlabel="trial", ylabel=monitor, title="--time-budget search (trial 0: the given settings)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)


def search_end(started: float, budget: float, full_epochs: int, best_seconds_per_epoch: float | None) -> float:
    """When the search stops: at ``SEARCH_SHARE`` of the budget, or earlier, once the time left only holds the
    best trial's settings trained for their full epochs (planned as the final run plans its epochs)."""
    end = started + SEARCH_SHARE * budget
    if best_seconds_per_epoch is None:
        return end
    return min(end, started + budget - best_seconds_per_epoch * full_epochs / PLANNED)


def room_for_a_trial(now: float, end: float, trial_epochs: int, best_seconds_per_epoch: float | None) -> bool:
    """Whether a new trial starts: the search has not ended at ``end``, and the trial can train its
    ``trial_epochs`` before then, judged by the best trial's pace (none yet: the first trial always starts). One
    that cannot is stopped by the clock and discarded as cut short, so it would only take time from the final run
    (seen on Omniglot, SCUT-FBP5500 and A→C: 10–101 s, no epoch finished)."""
    return now < end and (best_seconds_per_epoch is None or now + trial_epochs * best_seconds_per_epoch <= end)


def _seconds_per_epoch(trial) -> float:
    # The trial's whole time, data preparation included: a slight overestimate, which errs on the side of
    # leaving the final run enough time.
    return (trial.datetime_complete - trial.datetime_start).total_seconds() / max(1, len(trial.intermediate_values))


def _best_trial(study, mode: str, folder: Path | None = None, monitor: str = "") -> tuple[int, Any] | None:
    """The finished trial with the best value; with ``folder``, trial 0 (the settings as given) unless another
    beats it by more than trial 0's standard error, where its task logs one (``val_pearson_se``): the
    one-standard-error rule of ``BestEpoch.update``, preferring the given settings, which were chosen across
    data sets. On SCUT's Caucasian faces a resnet trial 0.013 ahead of trial 0 on validation (standard error
    0.03) scored 0.27 on the Asian faces, where trial 0's settings scored 0.41 (bench/README)."""
    ranked = [(i, t) for i, t in enumerate(_kept(study)) if t.value is not None and t.state.name == "COMPLETE"]
    if not ranked:
        return None
    best = max(ranked, key=lambda it: it[1].value if mode == "max" else -it[1].value)
    given = ranked[0] if ranked[0][0] == 0 else None
    if folder is None or given is None or best is given:
        return best
    close = abs(best[1].value - given[1].value) <= _standard_error(folder / "trial-000", monitor, given[1].value)
    return given if close else best


def _standard_error(run: Path, monitor: str, value: float) -> float:
    """The standard error the run logged beside its ``value`` of ``monitor`` (0 where its task logs none)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return next((row.get(f"{monitor}_se", 0.0) for row in rows if row.get(monitor) == value), 0.0)


def _run_trials(cfg: TrainConfig, run: Path, clock: _Clock, budget: float, full_epochs: int, quiet: bool,
                monitor: str, mode: str) -> Any:
    import optuna

    folder = run / SEARCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    study = _study(folder, cfg, mode)
    distributions = space.space(cfg.task)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def pace() -> float | None:
        best = _best_trial(study, mode)
        return _seconds_per_epoch(best[1]) if best else None

    def deadline() -> float:
        return search_end(clock.started, budget, full_epochs, pace())

    while room_for_a_trial(time.time(), deadline(), cfg.epochs, pace()) and (cfg.search_trials is None or len(
            [t for t in study.trials if t.state in finished]) < cfg.search_trials):
        # Reseeded per trial: the sequence of settings depends on the seed and the results so far, not on how
        # often the search was interrupted and resumed.
        # Trials are counted without the interrupted ones, so a resumed search numbers (and seeds) its trials as
        # an uninterrupted one does.
        index = len(_kept(study))
        study.sampler = optuna.samplers.TPESampler(seed=cfg.seed * 1009 + index, n_startup_trials=4)
        trial = study.ask(distributions)
        trial_cfg = space.apply(dataclasses.replace(
            cfg, out=str(folder / f"trial-{index:03d}"), time_budget=None, search_trials=None,
            progress=False), trial.params).validate()
        shutil.rmtree(trial_cfg.out, ignore_errors=True)

        def report(trainer, row, trial=trial) -> None:
            clock.save()
            trial.report(row[monitor], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        say(f"search: trial {index}: {json.dumps(trial.params)}", quiet)
        try:
            train_run(trial_cfg, quiet=True, tensorboard=False, deadline=deadline(), epoch_hooks=[report])
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            value = _best_value(Path(trial_cfg.out), monitor, mode)
            if value is None or _cut_short(Path(trial_cfg.out)):  # stopped by the clock: not a finished trial
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, value)
        clock.save()
        _write_report(run, study, monitor)
    return study


def train_within_budget(cfg: TrainConfig, resume: bool = False, quiet: bool = False,
                        tensorboard: bool = True) -> tuple[list[dict], dict]:
    """Search, then train the chosen settings, within ``cfg.time_budget``; returns (history, search summary)."""

    budget = parse_duration(cfg.time_budget)
    run = Path(cfg.out)
    (run / SEARCH_DIR).mkdir(parents=True, exist_ok=True)
    cfg.save(run / CONFIG_FILE)  # a run to resume from the first moment
    clock = _Clock(run / SEARCH_DIR / CLOCK)
    records = read_source(cfg.data, cfg.root, kind=_kind(cfg))
    if cfg.val == 0 or feasible_val(records, cfg)[1]:
        say(f"note: --time-budget {cfg.time_budget}: without a validation split there is nothing to choose "
            "settings by: training the given settings until the budget ends", quiet)
        history = train_run(cfg, resume=resume, quiet=quiet, tensorboard=tensorboard,
                            deadline=clock.started + budget, epoch_hooks=[clock.save])
        return history, {"chosen": None, "model_from": "given settings (no validation split)", "trials": []}
    monitor, mode = ("val_pearson", "max") if cfg.task == "score" else ("val_map_at_r", "max")
    chosen_file = run / SEARCH_DIR / CHOSEN
    full_epochs = cfg.epochs_for(round(len(records) * (1 - cfg.val)))
    if not chosen_file.exists():
        trials_cfg = dataclasses.replace(cfg, epochs=max(2, full_epochs // TRIAL_SHARE),
                                         pretrain_epochs=max(1, cfg.pretrain_epochs // TRIAL_SHARE))
        study = _run_trials(trials_cfg, run, clock, budget, full_epochs, quiet, monitor, mode)
        if (found := _best_trial(study, mode, run / SEARCH_DIR, monitor)) is None:
            raise FinegrainError(f"--time-budget {cfg.time_budget}: no search trial finished; give more time")
        index, best = found
        per_epoch = _seconds_per_epoch(best)
        epochs = int(min(max((budget - clock.spent()) * PLANNED // per_epoch, 1), full_epochs))
        atomic_write_text(chosen_file, json.dumps({"trial": index, "params": best.params,
                                                   "value": best.value, "epochs": epochs}))
    chosen = json.loads(chosen_file.read_text())
    final = dataclasses.replace(space.apply(cfg, chosen["params"]), epochs=chosen["epochs"]).validate()
    trial_run = run / SEARCH_DIR / f"trial-{chosen['trial']:03d}"
    say(f"search: chose trial {chosen['trial']} ({json.dumps(chosen['params'])}); training on from its weights for "
        f"{chosen['epochs']} more epochs", quiet)
    # The final run continues from the chosen trial's weights (a warm restart of the schedule), so the time the
    # search spent on it is not lost.
    history = train_run(final, resume=resume, quiet=quiet, tensorboard=tensorboard, deadline=clock.started + budget,
                        epoch_hooks=[clock.save], warm_start=trial_run / MODEL_FILE)
    # The final run is usually better (it trains longer); if the deadline cut it short, the trial may be.
    final_value, trial_value = _best_value(run, monitor, mode), _best_value(trial_run, monitor, mode)
    kept = "final"
    if trial_value is not None and (final_value is None or trial_value > final_value):
        shutil.copyfile(trial_run / MODEL_FILE, run / MODEL_FILE)
        kept = f"trial {chosen['trial']}"
    rows = [json.loads(line) for line in (run / "search.jsonl").read_text().splitlines() if line]
    summary = {"chosen": chosen, "model_from": kept, f"final_{monitor}": final_value,
               f"trial_{monitor}": trial_value, "seconds": round(clock.spent(), 1), "trials": rows}
    atomic_write_text(run / SEARCH_DIR / "summary.json", json.dumps(summary, indent=2))
    return history, summary
