"""Fixtures for the service: tiny models, a client factory, photos as bytes, and a real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
LFW = REPO.parent / "shared" / "data" / "lfw" / "images"


def photo(seed: int, size: int = 40, fmt: str = ".png") -> bytes:
    """A random colour photo encoded as PNG (or JPEG)."""
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(fmt, image)[1].tobytes()


def lfw_photo(name: str, number: int = 1) -> bytes:
    path = LFW / name / f"{name}_{number:04d}.jpg"
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")
    return path.read_bytes()


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory, make_model):
    """(embedding model, scoring model) files: tiny, random, 32 px."""
    root = tmp_path_factory.mktemp("serve-models")
    return make_model(root / "embed.safetensors"), make_model(root / "score.safetensors", kind="score")


@pytest.fixture
def client_for(tmp_path, serve_models):
    """``client_for(**settings)``: a TestClient over a fresh service (data in tmp_path/data unless given)."""
    from fastapi.testclient import TestClient

    from finegrain.serve.app import create_app
    from finegrain.serve.settings import ServeSettings

    clients = []

    def make(**overrides):
        embed, score = serve_models
        options = {"model": str(embed), "scorer": str(score), "data": str(tmp_path / "data"), **overrides}
        client = TestClient(create_app(ServeSettings(**options)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``finegrain serve`` in a subprocess (a process a test can SIGKILL), on a free port of 127.0.0.1."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "finegrain.cli", "serve", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "server did not start within 60 s"
            time.sleep(0.1)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def server_process():
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        server = ServerProcess(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill()
