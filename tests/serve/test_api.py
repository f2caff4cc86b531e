"""Every route of ``finegrain serve`` through FastAPI's TestClient: answers checked against the library's own
encoders, errors as JSON with the right 4xx, auth on writes, limits, and wrong model kinds."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from finegrain.data.images import decode_image
from finegrain.encoders import load_encoder
from finegrain.errors import FinegrainError
from tests.serve.conftest import lfw_photo, photo


def _embed(model, data: bytes) -> np.ndarray:
    encoder = load_encoder(model)
    from finegrain.data.images import resize_square

    return encoder.encode_array(resize_square(decode_image(Path("x"), data), encoder.image_size)[None])


def _people(client, name="people"):
    assert client.post("/collections", json={"name": name}).status_code == 201
    ann = client.post(f"/collections/{name}/items", files=[("files", ("a1.png", photo(1))),
                                                           ("files", ("a2.png", photo(2)))], data={"label": "ann"})
    bob = client.post(f"/collections/{name}/items", files=[("files", ("b.png", photo(3)))], data={"label": "bob"})
    assert ann.status_code == bob.status_code == 201
    return ann.json()["ids"], bob.json()["ids"]


def test_health(client_for):
    body = client_for().get("/health").json()
    assert body["status"] == "ok"
    assert body["model"]["kind"] == "embedding" and body["scorer"]["kind"] == "score"
    assert body["threshold"] == 0.5 and "default" in body["threshold_source"]


def test_collections_create_list_delete(client_for):
    client = client_for()
    assert client.post("/collections", json={"name": "people"}).json() == {"name": "people", "items": 0}
    assert client.post("/collections", json={"name": "people"}).status_code == 409
    assert client.get("/collections").json() == {"collections": [{"name": "people", "items": 0}]}
    assert client.delete("/collections/people").json() == {"deleted": "people"}
    assert client.get("/collections").json() == {"collections": []}
    missing = client.delete("/collections/people")
    assert missing.status_code == 404 and "unknown collection 'people'" in missing.json()["error"]


@pytest.mark.parametrize("name", ["../../etc", "..", "a/b", "", ".hidden", "x" * 65, "name with space", "é"])
def test_collection_names_are_validated(client_for, name, tmp_path):
    response = client_for().post("/collections", json={"name": name})
    assert response.status_code == 422 and "not allowed" in response.json()["error"]
    assert not (tmp_path / "etc").exists()


def test_path_traversal_in_urls_is_refused(client_for):
    client = client_for()
    for url in ["/collections/..%2F..%2Fetc/items", "/collections/%2E%2E/items"]:
        assert client.get(url).status_code in (404, 422)
        assert "error" in client.get(url).json()


def test_items_add_list_image_delete(client_for, tmp_path):
    client = client_for()
    (a1, a2), (b,) = _people(client)
    items = client.get("/collections/people/items").json()["items"]
    assert [(i["id"], i["label"]) for i in items] == [(a1, "ann"), (a2, "ann"), (b, "bob")]
    stored = client.get(items[0]["image"])
    assert stored.status_code == 200 and stored.content == photo(1) and stored.headers["content-type"] == "image/png"
    page = client.get("/collections/people/items", params={"offset": 1, "limit": 1}).json()
    assert [i["id"] for i in page["items"]] == [a2] and page["total"] == 3
    assert client.get("/collections/people/items", params={"limit": 0}).status_code == 422
    thumb = client.get(items[0]["image"], params={"size": 16})
    assert thumb.headers["content-type"] == "image/jpeg" and decode_image(Path("t"), thumb.content).shape == (16, 16, 3)
    assert client.get(items[0]["image"], params={"size": 4}).status_code == 422
    assert client.delete(f"/collections/people/items/{a1}").json() == {"deleted": a1}
    assert [i["id"] for i in client.get("/collections/people/items").json()["items"]] == [a2, b]
    assert len(list((tmp_path / "data/collections/people/items").iterdir())) == 2  # its photo went too
    assert client.delete(f"/collections/people/items/{a1}").status_code == 404
    assert client.delete("/collections/people/items/..%2F..%2Findex.json").status_code == 404
    assert client.post("/collections/nobody/items", files={"files": ("a.png", photo(1))}).status_code == 404


def test_an_add_with_one_bad_file_adds_nothing(client_for):
    client = client_for()
    _people(client)
    response = client.post("/collections/people/items", data={"label": "cid"},
                           files=[("files", ("good.png", photo(7))), ("files", ("notes.jpg", b"just text"))])
    assert response.status_code == 415 and "notes.jpg" in response.json()["error"]
    assert len(client.get("/collections/people/items").json()["items"]) == 3


def test_search_matches_the_encoder(client_for, serve_models):
    client = client_for()
    (a1, a2), (b,) = _people(client)
    matches = client.post("/collections/people/search", files={"file": ("q.png", photo(2))},
                          data={"k": "3"}).json()["matches"]
    assert matches[0]["id"] == a2 and matches[0]["similarity"] == pytest.approx(1, abs=1e-5)
    query = _embed(serve_models[0], photo(2))[0]
    for match, seed in zip(sorted(matches[1:], key=lambda m: m["id"] != a1), (1, 3)):
        assert match["similarity"] == pytest.approx(float(query @ _embed(serve_models[0], photo(seed))[0]), abs=1e-5)
    assert [m["similarity"] for m in matches] == sorted((m["similarity"] for m in matches), reverse=True)
    two = client.post("/collections/people/search", files={"file": ("q.png", photo(2))}, data={"k": "2"})
    assert len(two.json()["matches"]) == 2
    assert client.post("/collections/people/search", files={"file": ("q.png", photo(2))},
                       data={"k": "0"}).status_code == 422


def test_identify_names_the_nearest_or_unknown(client_for):
    client = client_for()
    _people(client)
    answer = client.post("/collections/people/identify", files={"file": ("q.png", photo(3))}).json()
    assert answer["label"] == "bob" and answer["confidence"] == pytest.approx(1, abs=1e-5)
    assert answer["matches"][0]["label"] == "bob" and answer["alternatives"][0]["label"] == "ann"
    unknown = client.post("/collections/people/identify", files={"file": ("q.png", photo(9))},
                          data={"threshold": "1.0"}).json()
    assert unknown["label"] is None and unknown["unknown"] and unknown["nearest"] in ("ann", "bob")
    bad = client.post("/collections/people/identify", files={"file": ("q.png", photo(9))}, data={"threshold": "2"})
    assert bad.status_code == 422 and "threshold" in bad.json()["error"]
    client.post("/collections", json={"name": "unlabelled"})
    client.post("/collections/unlabelled/items", files={"files": ("x.png", photo(5))})
    none = client.post("/collections/unlabelled/identify", files={"file": ("q.png", photo(5))})
    assert none.status_code == 409 and "no labelled items" in none.json()["error"]


def test_identify_every_face_in_a_group_photo(client_for):
    import cv2

    faces = [cv2.imdecode(np.frombuffer(lfw_photo(n), np.uint8), cv2.IMREAD_COLOR)
             for n in ("Aaron_Peirsol", "Abdullah_Gul")]
    group = cv2.imencode(".jpg", np.concatenate(faces, axis=1))[1].tobytes()
    client = client_for()
    client.post("/collections", json={"name": "people"})
    client.post("/collections/people/items", files={"files": ("a.jpg", lfw_photo("Aaron_Peirsol", 2))},
                data={"label": "Aaron", "detect": "true"})
    body = client.post("/collections/people/identify", files={"file": ("group.jpg", group)},
                       data={"detect": "true"}).json()
    assert len(body["faces"]) >= 2 and (body["width"], body["height"]) == (224, 112)
    for face in body["faces"]:
        assert len(face["box"]) == 4 and 0 <= face["score"] <= 1 and face["matches"][0]["label"] == "Aaron"
    xs = sorted((f["box"][0] + f["box"][2]) / 2 for f in body["faces"])
    assert xs[0] < 112 < xs[-1]  # one face in each 112-px half
    nothing = client.post("/collections/people/identify", files={"file": ("noise.png", photo(1, 64))},
                          data={"detect": "true"}).json()
    assert nothing["faces"] == []


def test_verify_two_photos_and_a_subject(client_for, serve_models):
    client = client_for()
    _people(client)
    same = client.post("/verify", files={"file_a": ("a.png", photo(1)), "file_b": ("b.png", photo(1))}).json()
    assert same == {"similarity": pytest.approx(1, abs=1e-5), "same": True, "threshold": 0.5}
    pair = client.post("/verify", files={"file_a": ("a.png", photo(4)), "file_b": ("b.png", photo(2))},
                       data={"threshold": "0.99999"}).json()
    oracle = float(_embed(serve_models[0], photo(4))[0] @ _embed(serve_models[0], photo(2))[0])
    assert pair["similarity"] == pytest.approx(oracle, abs=1e-5) and pair["same"] is False
    subject = client.post("/verify", files={"file": ("q.png", photo(4))}, data={"label": "ann"}).json()
    each = [client.post("/verify", files={"file_a": ("q.png", photo(4)), "file_b": ("x.png", photo(s))}).json()
            ["similarity"] for s in (1, 2)]
    assert subject["examples"] == 2 and subject["similarity"] == pytest.approx(max(each), abs=1e-5)
    assert subject["mean_similarity"] == pytest.approx(np.mean(each), abs=1e-5)
    assert client.post("/verify", files={"file": ("q.png", photo(4))}, data={"label": "zoe"}).status_code == 404
    neither = client.post("/verify", files={"file_a": ("q.png", photo(4))})
    assert neither.status_code == 422 and "file_a and file_b" in neither.json()["error"]


def test_verify_against_a_label_in_two_collections_asks_which(client_for):
    client = client_for()
    _people(client, "one")
    _people(client, "two")
    both = client.post("/verify", files={"file": ("q.png", photo(4))}, data={"label": "ann"})
    assert both.status_code == 422 and "one, two" in both.json()["error"]
    assert client.post("/verify", files={"file": ("q.png", photo(4))},
                       data={"label": "ann", "collection": "two"}).json()["collection"] == "two"


def test_score_equals_the_scorer(client_for, serve_models):
    body = client_for().post("/score", files={"file": ("q.png", photo(6))}).json()
    assert body["score"] == pytest.approx(float(_embed(serve_models[1], photo(6))[0]), abs=1e-5)


def test_detect_finds_a_face(client_for):
    body = client_for().post("/detect", files={"file": ("face.jpg", lfw_photo("Aaron_Peirsol"))}).json()
    assert (body["width"], body["height"]) == (112, 112)
    assert len(body["faces"]) >= 1 and body["faces"][0]["score"] >= 0.5
    x1, y1, x2, y2 = body["faces"][0]["box"]
    assert 36 < (x1 + x2) / 2 < 76 and 36 < (y1 + y2) / 2 < 76  # the shared LFW crops are centred


def test_explain_returns_png_heat_maps(client_for):
    client = client_for()
    pair = client.post("/explain", files={"file_a": ("a.png", photo(1)), "file_b": ("b.png", photo(2))})
    assert pair.status_code == 200 and pair.headers["content-type"] == "image/png"
    assert pair.content.startswith(b"\x89PNG")
    one = client.post("/explain", files={"file": ("a.png", photo(1))})
    assert one.status_code == 200 and one.content.startswith(b"\x89PNG")
    assert client.post("/explain", files={"file_a": ("a.png", photo(1))}).status_code == 422


def test_wrong_model_kinds(client_for, serve_models):
    embed, score = serve_models
    scorer_only = client_for(model=None)
    for response in (scorer_only.get("/collections"), scorer_only.post("/verify", files={
            "file_a": ("a.png", photo(1)), "file_b": ("b.png", photo(2))})):
        assert response.status_code == 409 and "wrong model kind" in response.json()["error"]
    model_only = client_for(scorer=None)
    response = model_only.post("/score", files={"file": ("a.png", photo(1))})
    assert response.status_code == 409 and "--scorer" in response.json()["error"]
    with pytest.raises(FinegrainError, match="scoring model"):
        client_for(model=str(score))
    with pytest.raises(FinegrainError, match="embedding model"):
        client_for(scorer=str(embed))


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_bad_images_are_named_with_the_right_status(client_for):
    client = client_for()

    def score(name, data):
        return client.post("/score", files={"file": (name, data)})

    bomb = score("bomb.png", _png_header(100_000, 100_000) + b"IDATxIEND")  # refused from the header alone
    assert bomb.status_code == 413 and "100000×100000" in bomb.json()["error"]
    text = score("photo.jpg", b"this is not an image")
    assert text.status_code == 415 and "photo.jpg: not an image" in text.json()["error"]
    truncated = score("cut.jpg", photo(1, 64, ".jpg")[:300])
    assert truncated.status_code == 422 and "truncated JPEG" in truncated.json()["error"]
    assert score("empty.png", b"").status_code == 422
    tiny = score("tiny.png", photo(1, 4))
    assert tiny.status_code == 422 and "too small" in tiny.json()["error"]
    renamed = score("looks-like.txt", photo(1, 40, ".jpg"))  # the bytes decide, not the name
    assert renamed.status_code == 200
    missing = client.post("/score")
    assert missing.status_code == 422 and "file" in missing.json()["error"]


def test_upload_size_limit(client_for):
    client = client_for(max_upload_mb=0.05)
    big = client.post("/score", files={"file": ("big.png", photo(1, 200))})  # ~120 kB of noise
    assert big.status_code == 413 and "--max-upload-mb" in big.json()["error"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(20):
            yield b"x" * 10_000

    streamed = client.post("/score", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413
    assert client.post("/score", files={"file": ("ok.png", photo(1))}).status_code == 200


def test_api_key_guards_every_write_and_nothing_else(client_for):
    client = client_for(api_key="s3cret")
    assert client.post("/collections", json={"name": "p"}).status_code == 401
    assert client.post("/collections", json={"name": "p"}, headers={"X-API-Key": "nope"}).status_code == 403
    key = {"X-API-Key": "s3cret"}
    assert client.post("/collections", json={"name": "p"}, headers=key).status_code == 201
    add = {"files": ("a.png", photo(1))}
    assert client.post("/collections/p/items", files=add, data={"label": "a"}).status_code == 401
    item = client.post("/collections/p/items", files=add, data={"label": "a"}, headers=key).json()["ids"][0]
    assert client.delete(f"/collections/p/items/{item}").status_code == 401
    assert client.delete("/collections/p").status_code == 401
    # reads need no key
    assert client.get("/collections").status_code == 200
    assert client.post("/collections/p/search", files={"file": ("q.png", photo(1))}).status_code == 200
    assert client.delete(f"/collections/p/items/{item}", headers=key).status_code == 200
    assert client.delete("/collections/p", headers=key).status_code == 200


def test_api_key_from_the_environment(monkeypatch, tmp_path, serve_models):
    from finegrain.cli import build_parser

    monkeypatch.setenv("FINEGRAIN_API_KEY", "from-env")
    started = {}

    def fake_run(app, host, port, **_):
        started.update(key=app.state.service.settings.api_key, host=host, port=port)

    monkeypatch.setattr("uvicorn.run", fake_run)
    args = vars(build_parser().parse_args(["serve", "--model", str(serve_models[0]), "--data", str(tmp_path)]))
    assert args.pop("_command").run(**{k: v for k, v in args.items() if k not in ("command", "action")}) == 0
    assert started == {"key": "from-env", "host": "127.0.0.1", "port": 8080}  # local only unless told


def test_no_cors_unless_asked(client_for):
    preflight = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    closed = client_for().options("/collections", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    opened = client_for(cors=("http://elsewhere.example",)).options("/collections", headers=preflight)
    assert opened.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_page_and_docs(client_for):
    client = client_for()
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/docs").status_code == 200
    assert "/collections/{name}/identify" in client.get("/openapi.json").json()["paths"]
