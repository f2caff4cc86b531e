"""Collections survive restarts; a SIGKILL in the middle of an add leaves the collection before or after it."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from finegrain.errors import ConfigError
from tests.serve.conftest import photo


def _state(client, name="people") -> list[tuple[str, str]]:
    return [(i["id"], i["label"]) for i in client.get(f"/collections/{name}/items").json()["items"]]


def test_collections_survive_a_restart(client_for, tmp_path):
    first = client_for()
    first.post("/collections", json={"name": "people"})
    first.post("/collections/people/items", files=[("files", ("a.png", photo(1))), ("files", ("b.png", photo(2)))],
               data={"label": "ann"})
    before = _state(first)
    hits = first.post("/collections/people/search", files={"file": ("q.png", photo(2))}).json()
    first.__exit__(None, None, None)
    again = client_for()  # same data folder, new process state
    assert _state(again) == before
    assert again.post("/collections/people/search", files={"file": ("q.png", photo(2))}).json() == hits


def test_another_model_is_refused_or_reembeds(client_for, make_model, tmp_path):
    first = client_for()
    first.post("/collections", json={"name": "people"})
    first.post("/collections/people/items", files={"files": ("a.png", photo(1))}, data={"label": "ann"})
    other = make_model(tmp_path / "other.safetensors", seed=5)
    with pytest.raises(ConfigError, match="collection 'people'.*--reembed"):
        client_for(model=str(other))
    moved = client_for(model=str(other), reembed=True)
    assert _state(moved) == _state(first)
    top = moved.post("/collections/people/search", files={"file": ("q.png", photo(1))}).json()["matches"][0]
    assert top["similarity"] == pytest.approx(1, abs=1e-5)  # re-embedded with the new model


@pytest.mark.slow
def test_sigkill_during_adds_leaves_each_collection_before_or_after(server_process, serve_models, tmp_path):
    """Kill the server at spread-out moments of a 30-photo add; after each restart the collection holds
    the photos of whole requests only, and no stray photo files."""
    embed, _ = serve_models
    args = ("--model", str(embed), "--data", str(tmp_path / "data"))
    batch = [("files", (f"p{i}.png", photo(100 + i, 160))) for i in range(30)]
    server = server_process(*args)
    httpx.post(server.url + "/collections", json={"name": "people"})
    started = time.perf_counter()
    assert httpx.post(server.url + "/collections/people/items", files=batch, data={"label": "x"},
                      timeout=60).status_code == 201
    took = time.perf_counter() - started
    expected = 30
    for fraction in (0.2, 0.5, 0.8, 1.1):
        sent = threading.Thread(target=_post_quietly, args=(server.url, batch), daemon=True)
        sent.start()
        time.sleep(took * fraction)
        server.kill()
        sent.join()
        server = server_process(*args)  # starts again on what the kill left
        items = httpx.get(server.url + "/collections/people/items").json()["items"]
        assert len(items) in (expected, expected + 30), f"half an add survived a kill at {fraction:.0%}"
        expected = len(items)
        stored = list((tmp_path / "data/collections/people/items").iterdir())
        assert len(stored) == len(items), "photos of a killed add were left behind"
        top = httpx.post(server.url + "/collections/people/search", files={"file": ("q.png", photo(100, 160))})
        assert top.status_code == 200 and top.json()["matches"][0]["similarity"] == pytest.approx(1, abs=1e-4)
    server.stop()


def _post_quietly(url: str, batch) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
        httpx.post(url + "/collections/people/items", files=batch, data={"label": "x"}, timeout=60)
