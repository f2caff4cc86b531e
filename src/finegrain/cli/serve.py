"""``finegrain serve``: the HTTP service and its web page."""

from __future__ import annotations

import os

from finegrain.cli.registry import arg, command, device_arg


@command("serve", "an HTTP service and web page: collections, identify, search, verify, score, detect, explain",
         arg("--model", help="embedding model (run folder or file): collections, search, identify, verify"),
         arg("--scorer", help="scoring model (run folder or file): /score"),
         arg("--detector", help="face detector file (default: the one bundled with finegrain)"),
         arg("--data", required=True, help="folder where collections are kept (created when missing)"),
         arg("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"),
         arg("--port", type=int, default=8080, help="port (default: 8080)"),
         arg("--api-key", help="key that every change (POST/DELETE on collections and items) must send as "
                               "X-API-Key (default: $FINEGRAIN_API_KEY; none: changes are open)"),
         arg("--max-upload-mb", type=float, default=10.0, help="largest request body (default: 10 MB; more: 413)"),
         arg("--max-megapixels", type=float, default=40.0,
             help="largest image, checked from its header before decoding (default: 40)"),
         arg("--cors", action="append", default=[], metavar="ORIGIN",
             help="allow browser pages from this origin (repeatable; default: none)"),
         arg("--workers", type=int, default=4, help="requests processed at once (default: 4)"),
         arg("--queue", type=int, default=64, help="requests waiting beyond those before a 503 (default: 64)"),
         arg("--threshold", type=float,
             help="same-person cosine threshold (default: the model's stored verification threshold, else 0.5)"),
         arg("--reembed", action="store_true",
             help="re-embed collections made with another model from their stored photos instead of refusing"),
         device_arg(),
         description="Serves the JSON API (OpenAPI docs at /docs) and a web page at /. Models load once; "
                     "embeddings are batched across concurrent requests.")
def serve_command(data: str, model: str | None = None, scorer: str | None = None, detector: str | None = None,
                  host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None,
                  max_upload_mb: float = 10.0, max_megapixels: float = 40.0, cors: list[str] | None = None,
                  workers: int = 4, queue: int = 64, threshold: float | None = None, reembed: bool = False,
                  device: str = "auto") -> int:
    import uvicorn

    from finegrain.serve.app import create_app
    from finegrain.serve.settings import API_KEY_ENV, ServeSettings

    settings = ServeSettings(model=model, data=data, scorer=scorer, detector=detector,
                             api_key=api_key or os.environ.get(API_KEY_ENV) or None, max_upload_mb=max_upload_mb,
                             max_megapixels=max_megapixels, cors=tuple(cors or ()), workers=workers, queue=queue,
                             threshold=threshold, reembed=reembed, device=device)
    app = create_app(settings)
    where = f"http://{host}:{port}/"
    print(f"finegrain serve: {where} (API docs {where}docs); collections in {data}"
          + ("; changes need X-API-Key" if settings.api_key else ""), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0
