"""Request limits as one ASGI middleware: body size (413) and bounded concurrency with a queue (503).

The body is read up to the limit before the application sees it, so an oversized upload is refused whether
or not it declares a ``Content-Length``; at most ``workers`` requests are processed at once, ``queue`` more
wait their turn, and any beyond those get a 503 at once rather than an ever-growing backlog.
"""

from __future__ import annotations

import asyncio
import json

LIMITED_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    def __init__(self, app, max_body: int, workers: int, queue: int):
        self.app, self.max_body, self.workers, self.queue = app, max_body, workers, queue
        self.active = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None
        self._loop = None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a semaphore belongs to one event loop (tests start several)
            self._loop, self._slots = loop, asyncio.Semaphore(self.workers)
        return self._slots

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in LIMITED_METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        limit_mb = self.max_body / (1024 * 1024)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await _send_error(send, 413, f"request body too large ({int(declared) / 1048576:.1f} MB, "
                                                f"limit {limit_mb:g} MB: --max-upload-mb)")
        slots = self._semaphore()
        if slots.locked() and self.waiting >= self.queue:
            return await _send_error(send, 503, f"server busy: {self.active} requests in progress and {self.waiting} "
                                                "waiting; retry later")
        self.waiting += 1
        try:
            await slots.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            body, more = [], True
            size = 0
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    return await _send_error(send, 413, f"request body too large (over the {limit_mb:g} MB limit: "
                                                        "--max-upload-mb)")
                body.append(chunk)
                more = message.get("more_body", False)
            whole = b"".join(body)
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": whole, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.active -= 1
            slots.release()
