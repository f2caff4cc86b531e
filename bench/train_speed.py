"""Training throughput: finegrain's trainer against a plain PyTorch loop, same model, data and threads.

The plain loop is what a user writes first: a Dataset that decodes and resizes each JPEG every epoch (PIL),
random flips, a DataLoader with 2 workers, AdamW and the Huber loss on the same ScoringModel. finegrain
runs ``finegrain train --task score`` on the same images (its decode-once cache warmed first; the one-off
decode time is printed apart). Each side runs in its own process, in turn, for ``--epochs`` epochs over the
same images; the first epoch of each is a warm-up and is not counted.

    .venv/bin/python bench/train_speed.py --backbone tiny_darknet            # the issue's measurement
    .venv/bin/python bench/train_speed.py --backbone conv4 --width 0.5       # the default backbone
    .venv/bin/python bench/train_speed.py --profile                          # where finegrain's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# FINEGRAIN_SCUT: another copy of the data set (e.g. a subset carried to another machine).
SCUT = Path(os.environ.get("FINEGRAIN_SCUT", ROOT.parent / "shared" / "data" / "scut-fbp5500"))
RESULTS = ROOT / "bench" / "results" / "train_speed.jsonl"


def read_list(images: int) -> list[tuple[str, float]]:
    lines = (SCUT / "splits" / "60-40_train.txt").read_text().split("\n")
    rows = [(name, float(score)) for name, score in (line.split() for line in lines if line.strip())]
    return rows[:images]


class DecodingDataset(torch.utils.data.Dataset):
    """Decodes, resizes and flips each image on every access, as a first PyTorch loop does."""

    def __init__(self, rows: list[tuple[str, float]], size: int):
        self.rows, self.size = rows, size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        name, score = self.rows[i]
        img = Image.open(SCUT / "images" / name).convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1).div(127.5).sub(1.0)
        if torch.rand(()) < 0.5:
            x = x.flip(2)
        return x, torch.tensor(score, dtype=torch.float32)


def plain_epochs(args: argparse.Namespace) -> list[float]:
    """Images/s of each epoch of the plain loop."""
    from finegrain.models import RegressionHead, ScoringModel, create_backbone

    torch.manual_seed(args.seed)
    kw = {"width_multiplier": args.width} if args.width else {}
    backbone = create_backbone(args.backbone, **kw)
    device = torch.device("cuda" if args.device.startswith("cuda") else "cpu")
    model = ScoringModel(backbone, RegressionHead(backbone.num_features, "gem", 0.5)).train().to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(DecodingDataset(read_list(args.images), args.image_size),
                                         batch_size=args.batch, shuffle=True, num_workers=2, drop_last=True)
    criterion = torch.nn.HuberLoss()
    speeds = []
    for _ in range(args.epochs):
        started, seen = time.perf_counter(), 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = criterion(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            seen += len(x)
        speeds.append(seen / (time.perf_counter() - started))
    return speeds


def finegrain_config(args: argparse.Namespace, out: Path, list_file: Path):
    from finegrain.config import TrainConfig

    extra = {"width": args.width} if args.width else {}
    return TrainConfig(
        data=str(list_file), root=str(SCUT / "images"), out=str(out), task="score", backbone=args.backbone,
        image_size=args.image_size, epochs=args.epochs, batch_size=args.batch, val=0.0, patience=0,
        # The processes share the threads: 2 processes of 1 thread against 1 process of 2.
        threads=max(1, args.threads // args.processes), progress=False, seed=args.seed, cache_dir=str(args.cache),
        device=args.device, processes=args.processes, **extra,
        **({"workers": args.workers} if args.workers is not None else {}),
    ).validate()


def finegrain_epochs(args: argparse.Namespace, list_file: Path) -> list[float]:
    """Images/s of each of finegrain's epochs (the trainer's own figure: loading and augmentation included)."""
    from finegrain.train.run import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = finegrain_config(args, Path(tmp) / "run", list_file)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                history = train(cfg, quiet=True, tensorboard=False).history
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile), file=sys.stderr)
        else:
            history = train(cfg, quiet=True, tensorboard=False).history
    return [row["images_per_second"] for row in history]


def warm_cache(args: argparse.Namespace, list_file: Path) -> float:
    """Decode the images into finegrain's cache once (what a first run pays), in seconds."""
    from finegrain.data import read_source
    from finegrain.data.validate import prepare

    started = time.perf_counter()
    records = read_source(str(list_file), str(SCUT / "images"), kind="score")
    prepare(records, args.image_size, cache_dir=args.cache, task="score", progress=False)
    return time.perf_counter() - started


def side(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    list_file = args.cache / "list.txt"
    speeds = plain_epochs(args) if args.side == "plain" else finegrain_epochs(args, list_file)
    print(json.dumps(speeds))
    return 0


def run_side(name: str, argv: list[str]) -> list[float]:
    out = subprocess.run([sys.executable, __file__, "--side", name, *argv], check=True, stdout=subprocess.PIPE,
                         text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="tiny_darknet")
    p.add_argument("--width", type=float, default=None)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--images", type=int, default=1600, help="training images (of the 60/40 training list)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per side; the first is not counted")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="finegrain --workers (default: its own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="finegrain --device; the plain loop runs on the same device")
    p.add_argument("--processes", type=int, default=1, help="finegrain --processes")
    p.add_argument("--profile", type=int, default=0, help="print the N costliest ops of finegrain's run")
    p.add_argument("--cache", type=Path, default=None, help="decode cache folder (default: a temporary one)")
    p.add_argument("--side", choices=("plain", "finegrain"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first is a warm-up)")
    if args.side:
        return side(args)
    with tempfile.TemporaryDirectory() as tmp:
        args.cache = args.cache or Path(tmp)
        args.cache.mkdir(parents=True, exist_ok=True)
        list_file = args.cache / "list.txt"
        list_file.write_text("".join(f"{name} {score}\n" for name, score in read_list(args.images)))
        decode = warm_cache(args, list_file)
        given = sys.argv[1:]
        drop = {i for i, a in enumerate(given) if a == "--cache"}
        argv = [a for i, a in enumerate(given) if i not in drop and i - 1 not in drop and not a.startswith("--cache=")]
        argv += ["--cache", str(args.cache)]
        plain = run_side("plain", argv)
        ours = run_side("finegrain", argv)
    plain_ips, ours_ips = float(np.mean(plain[1:])), float(np.mean(ours[1:]))
    command = shlex.join([".venv/bin/python", "bench/train_speed.py", *sys.argv[1:]])
    result = {
        "command": command, "backbone": args.backbone, "width": args.width, "image_size": args.image_size,
        "images": args.images, "threads": args.threads, "cpus": len(os.sched_getaffinity(0)), "device": args.device,
        "torch": torch.__version__,
        "plain_images_per_second": round(plain_ips, 1), "finegrain_images_per_second": round(ours_ips, 1),
        "ratio": round(ours_ips / plain_ips, 2), "plain_epochs": plain, "finegrain_epochs": ours,
        "decode_once_seconds": round(decode, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(command)
    print(f"plain loop {plain_ips:.0f} images/s, finegrain {ours_ips:.0f} images/s: ratio {ours_ips / plain_ips:.2f} "
          f"(decode-once cache built in {decode:.1f} s, not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
