"""Bounded concurrency (a queue, then 503) and request batching, tested on the middleware and batcher alone."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from finegrain.serve.engine import Batcher
from finegrain.serve.limits import LimitsMiddleware


def _blocking_app(release: asyncio.Event, entered: list):
    async def app(scope, receive, send):
        await receive()
        entered.append(scope["path"])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return app


def test_requests_beyond_workers_and_queue_get_503():
    async def scenario():
        release, entered = asyncio.Event(), []
        app = LimitsMiddleware(_blocking_app(release, entered), max_body=1000, workers=1, queue=1)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            first = asyncio.create_task(client.post("/a", content=b"1"))
            while not entered:
                await asyncio.sleep(0.001)
            queued = asyncio.create_task(client.post("/b", content=b"2"))
            while app.waiting == 0:
                await asyncio.sleep(0.001)
            refused = await client.post("/c", content=b"3")  # one working, one waiting: full
            assert refused.status_code == 503 and "busy" in refused.json()["error"]
            assert entered == ["/a"]  # the queued one has not started
            release.set()
            assert (await first).status_code == 200 and (await queued).status_code == 200
            assert entered == ["/a", "/b"]
            assert (await client.get("/d")).status_code == 200  # reads are never gated

    asyncio.run(scenario())


def test_batcher_coalesces_concurrent_requests_and_splits_answers():
    calls = []

    def encode(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return images.reshape(len(images), -1).astype(np.float32).sum(axis=1, keepdims=True)

    async def scenario():
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(encode, pool, wait_s=0.05)
            inputs = [np.full((n, 2, 2, 3), i, np.uint8) for i, n in enumerate((1, 3, 2), start=1)]
            outputs = await asyncio.gather(*(batcher.encode(x) for x in inputs))
            await batcher.stop()
        return inputs, outputs

    inputs, outputs = asyncio.run(scenario())
    assert calls == [6]  # one network batch for three requests
    for x, y in zip(inputs, outputs):
        np.testing.assert_array_equal(y, encode(x))


def test_a_failing_batch_fails_every_request_in_it_and_the_next_one_works():
    calls = []

    def encode(images):
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return np.ones((len(images), 1), np.float32)

    async def scenario():
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(encode, pool, wait_s=0.05)
            failed = await asyncio.gather(*(batcher.encode(np.zeros((1, 2, 2, 3), np.uint8)) for _ in range(2)),
                                          return_exceptions=True)
            after = await asyncio.wait_for(batcher.encode(np.zeros((1, 2, 2, 3), np.uint8)), 5)
            await batcher.stop()
        return failed, after

    failed, after = asyncio.run(scenario())
    assert calls[0] == 2 and all(isinstance(r, RuntimeError) for r in failed)
    np.testing.assert_array_equal(after, [[1.0]])
