"""Build the demo bundle ``src/finegrain/assets/omniglot_demo.zip`` from the shared Omniglot copy.

It holds a subset of Omniglot's background set (the first CHARS characters of every alphabet,
all 20 drawers each, original 105×105 PNGs) for training, and Lake's 20 official 20-way one-shot
runs (drawn from the evaluation alphabets, so never seen in training) for the demo's accuracy.
Omniglot is MIT-licensed; its licence travels inside the zip.

    python scripts/make_demo_data.py [--shared ../shared/data/omniglot] [--chars 14]
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path, PurePosixPath

OUT = Path(__file__).resolve().parents[1] / "src/finegrain/assets/omniglot_demo.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/omniglot")
    parser.add_argument("--chars", type=int, default=14, help="characters taken from each background alphabet")
    args = parser.parse_args()

    background = zipfile.ZipFile(args.shared / "images_background.zip")
    runs = zipfile.ZipFile(args.shared / "all_runs.zip")
    chosen: dict[str, list[str]] = {}
    for name in sorted(background.namelist()):
        p = PurePosixPath(name)
        if name.endswith(".png") and len(p.parts) == 4:
            _, alphabet, character, _ = p.parts
            chars = chosen.setdefault(alphabet, [])
            if character not in chars:
                chars.append(character)
    keep = {(a, c) for a, cs in chosen.items() for c in cs[: args.chars]}

    OUT.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(OUT, "w", zipfile.ZIP_STORED) as z:  # PNGs are already compressed
        z.writestr("LICENSE", (args.shared / "LICENSE").read_text())
        for name in sorted(background.namelist()):
            p = PurePosixPath(name)
            if name.endswith(".png") and len(p.parts) == 4 and (p.parts[1], p.parts[2]) in keep:
                z.writestr(f"background/{p.parts[1]}/{p.parts[2]}/{p.parts[3]}", background.read(name))
                count += 1
        for name in sorted(runs.namelist()):
            if not name.endswith("/"):
                z.writestr(f"runs/{name}", runs.read(name))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB): {count} training images of {len(keep)} characters")


if __name__ == "__main__":
    main()
