"""Per-epoch metrics: metrics.jsonl, TensorBoard scalars and a training-curve PNG."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from finegrain.utils import atomic_write, atomic_write_text


class MetricsLog:
    """Keeps the whole history so a resumed run rewrites the files without duplicate epochs."""

    def __init__(self, run_dir: Path, history: list[dict] | None = None, tensorboard: bool = True,
                 best_epoch: Callable[[], int | None] = lambda: None):
        self.run_dir = Path(run_dir)
        self.history: list[dict] = list(history or [])
        self.best_epoch = best_epoch
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run logged after its last checkpoint.
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=len(self.history))

    def log(self, row: dict) -> None:
        self.history.append(row)
        epoch = row["epoch"]
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, epoch)
            self._writer.flush()
        lines = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write_text(self.run_dir / "metrics.jsonl", lines)
        plot_curves(self.history, self.run_dir / "curve.png", best_epoch=self.best_epoch())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def plot_curves(history: list[dict], path: Path, best_epoch: int | None = None) -> None:
    """Loss on the left, validation metrics on the right; epochs where the network grew are marked, and the
    best epoch (whose weights the model keeps) is starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    metric_keys = [k for k in history[-1] if k.startswith("val_")] if history else []
    fig, axes = plt.subplots(1, 2 if metric_keys else 1, figsize=(10 if metric_keys else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", ms=3)
    ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax.grid(alpha=0.3)
    if metric_keys:
        ax2 = axes[0][1]
        for key in metric_keys:
            ax2.plot(epochs, [r.get(key) for r in history], marker="o", ms=3, label=key[4:])
        ax2.set(xlabel="epoch", title="validation")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
    for r in history:
        if r.get("event"):
            for a in axes[0]:
                a.axvline(r["epoch"], color="grey", ls="--", lw=0.8)
            # "net2net widen x1.5: 2192 -> 3288 channels" -> "widen x1.5", written along the line.
            label = str(r["event"]).split(":")[0].replace("net2net ", "")
            axes[0][0].annotate(label, (r["epoch"], 1), xycoords=("data", "axes fraction"), rotation=90,
                                va="top", ha="right", fontsize=7, color="grey")
    if best_epoch is not None:
        for a in axes[0]:
            a.axvline(best_epoch, color="tab:green", lw=1.2, alpha=0.7)
        target = axes[0][1] if metric_keys else axes[0][0]
        target.annotate("best", (best_epoch, 0.02), xycoords=("data", "axes fraction"), color="tab:green",
                        fontsize=8, ha="left")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
