"""Load test of ``finegrain serve`` on this machine (127.0.0.1 only): throughput and latency of /search and /identify.

    .venv/bin/python bench/serve.py [--clients 32] [--seconds 60] [--items 100000] [--scenarios search,identify]
                                    [--model RUN] [--data DIR]

Builds (not timed) a service data folder with two collections, bound to the model the way the service binds them:
- ``search100k``: ``--items`` vectors; ``--real`` LFW photos embedded with the model, then noisy copies of those
  vectors (Gaussian, sigma 0.05 per dimension, re-normalised to unit length), labelled with the LFW names;
- ``people``: ``--per-person`` LFW photos each of ``--people`` people, labelled.
Then, for each scenario, starts ``finegrain serve`` as a subprocess on a free port of 127.0.0.1 (a fresh server per
scenario, so its network-batch figure is its own), waits for /health, and runs ``--clients`` concurrent clients (one
asyncio loop, httpx) that send requests back to back for ``--warmup`` seconds (not counted) and then ``--seconds``:
- ``search``: POST /collections/search100k/search, one LFW photo (as stored, 112 px JPEG), k=10;
- ``identify``: POST /collections/people/identify, detect=true, a group photo of 2–4 LFW people that are not in the
  collection, pasted on a CMU-MIT non-face scene (500×250 to 640×480), each checked beforehand with the service's
  face detector.
Reports per scenario: requests, errors (non-2xx, exception or malformed answer, warm-up included: must be 0),
requests/s, p50/p99 latency, the server's mean network batch (GET /health ``mean_batch``, its last 100 batches) and
the CPU the server and this client used (cores). Without ``--model`` the model is an untrained network of
``finegrain train``'s default embedding architecture and image size: throughput does not depend on the weights.
The client shares the machine with the server, and its own CPU is reported. Prints a table; appends one JSON line to
bench/results/serve.jsonl. Exits 1 if any request failed. Note: more than ``--workers`` + ``--queue`` of the service
(4 + 64 by default) clients get 503s by design.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve_data  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LOG = RESULTS / "serve.jsonl"
SEARCH, PEOPLE = "search100k", "people"
SEARCH_K = 10


@dataclass
class Scenario:
    name: str
    path: str
    payloads: list[bytes]
    form: dict[str, str]
    check: Callable[[dict], int | None]  # the answer → a count to report (faces), or None if it is malformed


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    warmup_requests: int = 0
    error_samples: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    window_s: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0


def _search_check(answer: dict) -> int | None:
    matches = answer.get("matches")
    return len(matches) if isinstance(matches, list) and len(matches) == SEARCH_K else None


def _identify_check(answer: dict) -> int | None:
    faces = answer.get("faces")
    return len(faces) if isinstance(faces, list) and all("box" in f and "matches" in f for f in faces) else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Server:
    """``finegrain serve`` on 127.0.0.1 as a child process; ``stop`` always ends it."""

    def __init__(self, model: Path, data: Path, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "finegrain"
        self.command = [str(exe), "serve", "--model", str(model), "--data", str(data), "--host", "127.0.0.1",
                        "--port", str(self.port)]
        self.log_path = data / f"serve-bench-{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # Ctrl-C reaches us; we end it ourselves

    def wait_healthy(self, timeout_s: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"finegrain serve exited with {self.process.returncode}:\n{self._tail()}")
            try:
                response = httpx.get(f"{self.url}/health", timeout=5.0)
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"finegrain serve did not answer /health within {timeout_s:.0f} s:\n{self._tail()}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=30.0).json()

    def _tail(self) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


async def run_load(url: str, scenario: Scenario, clients: int, warmup_s: float, seconds: float,
                   server_pid: int) -> LoadResult:
    """``clients`` tasks sending requests back to back; latencies count for requests started after the warm-up."""
    result = LoadResult()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120.0)) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        measure_from, stop_at = start + warmup_s, start + warmup_s + seconds
        marks: dict[str, float | None] = {}

        async def sample_cpu() -> None:
            await asyncio.sleep(max(0.0, measure_from - loop.time()))
            marks["server"], marks["client"] = _cpu_seconds(server_pid), time.process_time()

        async def worker(i: int) -> None:
            n = i
            while loop.time() < stop_at:
                payload = scenario.payloads[n % len(scenario.payloads)]
                n += clients
                t0 = loop.time()
                error, count = None, None
                try:
                    response = await client.post(scenario.path, files={"file": ("photo.jpg", payload, "image/jpeg")},
                                                 data=scenario.form)
                    if response.status_code >= 300:
                        error = f"HTTP {response.status_code}: {response.text[:200]}"
                    else:
                        count = scenario.check(response.json())
                        if count is None:
                            error = f"malformed answer: {response.text[:200]}"
                except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                    error = f"{type(e).__name__}: {e}"
                t1 = loop.time()
                if error is not None:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(error)
                if t0 < measure_from:
                    result.warmup_requests += 1
                elif error is None:
                    result.latencies_ms.append((t1 - t0) * 1000)
                    result.counts.append(count)

        cpu_task = asyncio.create_task(sample_cpu())
        await asyncio.gather(*(worker(i) for i in range(clients)))
        await cpu_task
        end = loop.time()
        result.window_s = end - measure_from
        server_end = _cpu_seconds(server_pid)
        if marks.get("server") is not None and server_end is not None:
            result.server_cpu_s = server_end - marks["server"]
        result.client_cpu_s = time.process_time() - marks["client"]
    return result


def summarise(scenario: Scenario, load: LoadResult, health: dict, clients: int) -> dict:
    lat = np.asarray(load.latencies_ms)
    window = max(load.window_s, 1e-9)
    row = {"scenario": scenario.name, "clients": clients, "requests": len(lat), "errors": load.errors,
           "warmup_requests": load.warmup_requests, "seconds": round(load.window_s, 2),
           "requests_per_s": round(len(lat) / window, 2),
           "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
           "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
           "mean_batch": round(health["mean_batch"], 2) if health.get("mean_batch") is not None else None,
           "server_cpu_cores": round(load.server_cpu_s / window, 2) if load.server_cpu_s is not None else None,
           "client_cpu_cores": round(load.client_cpu_s / window, 2)}
    if scenario.name == "identify":
        row["faces_per_answer"] = round(float(np.mean(load.counts)), 2) if load.counts else None
    if load.error_samples:
        row["error_samples"] = load.error_samples
    return row


def print_table(rows: list[dict]) -> None:
    columns = [("scenario", "scenario"), ("clients", "clients"), ("requests", "requests"), ("errors", "errors"),
               ("req/s", "requests_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("mean batch", "mean_batch"),
               ("server CPU", "server_cpu_cores"), ("client CPU", "client_cpu_cores")]
    print("\n| " + " | ".join(title for title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join("n/a" if r.get(key) is None else f"{r[key]:,}" if key == "requests" else f"{r[key]}"
                                for _, key in columns) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per scenario (default 60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
    parser.add_argument("--items", type=int, default=100_000, help=f"items in {SEARCH} (default 100000)")
    parser.add_argument("--real", type=int, default=3000, help="LFW photos embedded for it (default 3000)")
    parser.add_argument("--people", type=int, default=200, help=f"people in {PEOPLE} (default 200)")
    parser.add_argument("--per-person", type=int, default=4, help="photos of each in the collection (default 4)")
    parser.add_argument("--group-photos", type=int, default=40, help="distinct group photos sent (default 40)")
    parser.add_argument("--queries", type=int, default=256, help="distinct search photos sent (default 256)")
    parser.add_argument("--data", help="service data folder, kept and reused when built the same way "
                                       "(default: a temporary folder, removed at the end)")
    parser.add_argument("--model", help="embedding model, run folder or file (default: an untrained model of the "
                                        "default architecture)")
    parser.add_argument("--scenarios", default="search,identify", help="comma-separated: search, identify")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - {"search", "identify"}
    if unknown or not args.scenarios:
        parser.error(f"--scenarios: choose from search, identify (got {', '.join(sorted(unknown)) or 'none'})")
    for name in ("clients", "items", "real", "people", "per_person", "group_photos", "queries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    return args


def _terminate(signum, frame) -> None:  # SIGTERM: unwind like Ctrl-C, so the server is stopped
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    command = " ".join(map(shlex.quote, [".venv/bin/python", *sys.argv]))
    print(command, flush=True)
    machine = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"machine: {machine['cores']} cores, {machine['platform']}, load average {machine['load_average']} "
          "(client and server share these cores)", flush=True)
    temporary = None if args.data else tempfile.TemporaryDirectory(prefix="finegrain-serve-bench-")
    data = Path(args.data or temporary.name).resolve()
    data.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        if args.model:
            model_path, model_about = Path(args.model), {"untrained": False, "model": str(Path(args.model).resolve())}
        else:
            model_path = data / "untrained-default-model.safetensors"
            model_about = serve_data.untrained_default_model(model_path)
        encoder = serve_data.service_encoder(model_path)
        model_about |= {"fingerprint": encoder.fingerprint, "image_size": encoder.image_size,
                        "embedding_size": encoder.output_size, "tta": list(encoder.tta)}
        if model_about["untrained"]:
            print(f"model: UNTRAINED {model_about['backbone']} --width {model_about['width']} at "
                  f"{model_about['image_size']} px, {model_about['embedding_size']}-d {model_about['pooling']} "
                  "(finegrain train's default embedding architecture; throughput does not depend on the weights)")
        else:
            print(f"model: {model_about['model']} ({encoder.image_size} px, {encoder.output_size}-d, "
                  f"TTA {list(encoder.tta) or 'none'})")
        print(f"building the data folder {data} (not timed)", flush=True)
        built = time.perf_counter()
        people = serve_data.lfw_people()
        collections: dict[str, dict] = {}
        scenarios: list[Scenario] = []
        extra: dict[str, object] = {}
        if "search" in args.scenarios:
            collections[SEARCH] = serve_data.build_search_collection(data, SEARCH, encoder, people, args.items,
                                                                     args.real, args.seed)
            scenarios.append(Scenario("search", f"/collections/{SEARCH}/search",
                                      serve_data.query_photos(people, args.queries, args.seed),
                                      {"k": str(SEARCH_K)}, _search_check))
            print(f"  {SEARCH}: {args.items:,} items ({collections[SEARCH]['real_embedded']:,} embedded LFW photos, "
                  f"the rest their vectors plus Gaussian noise sigma {serve_data.NOISE}, re-normalised to unit "
                  "length)", flush=True)
        if "identify" in args.scenarios:
            chosen = serve_data.pick_people(people, args.people, args.per_person, args.seed)
            collections[PEOPLE] = serve_data.build_people_collection(data, PEOPLE, encoder, chosen, args.per_person,
                                                                     args.seed)
            groups = serve_data.group_photos(chosen, args.per_person, args.group_photos, args.seed)
            if not all(groups.detected):
                print(f"  warning: the detector finds no face in {groups.detected.count(0)} group photo(s)")
            sizes = np.asarray(groups.sizes)
            extra["group_photos"] = {"count": len(groups.jpegs), "mean_pasted": round(float(np.mean(groups.pasted)), 2),
                                     "mean_faces_detected": round(float(np.mean(groups.detected)), 2),
                                     "without_faces": groups.detected.count(0),
                                     "width": [int(sizes[:, 0].min()), int(sizes[:, 0].max())],
                                     "height": [int(sizes[:, 1].min()), int(sizes[:, 1].max())],
                                     "mean_kb": round(float(np.mean([len(j) for j in groups.jpegs])) / 1024, 1)}
            scenarios.append(Scenario("identify", f"/collections/{PEOPLE}/identify", groups.jpegs,
                                      {"detect": "true"}, _identify_check))
            g = extra["group_photos"]
            print(f"  {PEOPLE}: {collections[PEOPLE]['items']:,} items ({args.people} LFW people × {args.per_person}); "
                  f"{g['count']} group photos {g['width'][0]}–{g['width'][1]} × {g['height'][0]}–{g['height'][1]} px: "
                  f"{g['mean_pasted']} people pasted, {g['mean_faces_detected']} faces detected per photo on average",
                  flush=True)
        print(f"  built in {time.perf_counter() - built:.1f} s", flush=True)
        rows = []
        for scenario in scenarios:
            server = Server(model_path, data, scenario.name)
            started = time.perf_counter()
            server.wait_healthy()
            print(f"\n{scenario.name}: server {server.url} ready in {time.perf_counter() - started:.1f} s; "
                  f"{args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s", flush=True)
            load = asyncio.run(run_load(server.url, scenario, args.clients, args.warmup, args.seconds,
                                        server.process.pid))
            row = summarise(scenario, load, server.health(), args.clients)
            server.stop()
            server = None
            rows.append(row)
            print(json.dumps(row), flush=True)
        print_table(rows)
        record = {"command": command, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine,
                  "model": model_about, "collections": collections, **extra, "clients": args.clients,
                  "seconds": args.seconds, "warmup": args.warmup, "scenarios": rows}
        RESULTS.mkdir(parents=True, exist_ok=True)
        with LOG.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"\n{command}  →  {LOG}")
        failed = sum(r["errors"] for r in rows)
        if failed:
            print(f"FAILED: {failed} request(s) failed (see error_samples)", file=sys.stderr)
        return 1 if failed else 0
    finally:
        if server is not None:
            server.stop()
        if temporary is not None:
            with contextlib.suppress(OSError):
                temporary.cleanup()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the server was stopped", file=sys.stderr)
        sys.exit(130)
