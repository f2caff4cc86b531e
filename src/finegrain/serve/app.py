"""The FastAPI application: limits, errors as JSON ``{"error": ...}``, the API key on writes, the web page.

Routes live in ``routes_collections`` (collections, items, search, identify) and ``routes_models`` (verify,
score, detect, explain); both reach the models and collections through ``request.app.state.service``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from finegrain.errors import FinegrainError
from finegrain.index.gallery import IndexBinding
from finegrain.serve.collections import CollectionStore
from finegrain.serve.engine import Engine, resized
from finegrain.serve.limits import LimitsMiddleware
from finegrain.serve.settings import ServeSettings
from finegrain.serve.uploads import ApiError

PAGE = Path(__file__).parent / "page"


@dataclass
class Service:
    settings: ServeSettings
    engine: Engine
    store: CollectionStore | None  # None without an embedding model

    def collections(self) -> CollectionStore:
        if self.store is None:
            self.engine.need_embedder()
        return self.store


def build_service(settings: ServeSettings) -> Service:
    """Load the models and open the collections (a ``FinegrainError`` names what is wrong)."""
    engine = Engine(settings)
    store = None
    if engine.embedder is not None:
        encoder = engine.embedder
        binding = IndexBinding.from_model(encoder.path, tta=encoder.tta)
        store = CollectionStore(settings.data, encoder.path, binding, encoder.output_size,
                                reembed=(lambda images: encoder.encode_array(resized(images, encoder)))
                                if settings.reembed else None)
    return Service(settings, engine, store)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else e.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    from finegrain.serve import routes_collections, routes_models, routes_video

    service = service or build_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.engine.close()

    app = FastAPI(title="finegrain", lifespan=lifespan,
                  description="Identification, search, verification, scoring and face detection with models "
                              "trained on your own data. Writes need X-API-Key when the service has a key.")
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError):
        return JSONResponse({"error": error.message, **error.extra}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError):
        return JSONResponse({"error": _validation_message(error)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException):
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        return JSONResponse({"error": message}, status_code=error.status_code)

    @app.exception_handler(FinegrainError)
    async def finegrain_error(_: Request, error: FinegrainError):
        return JSONResponse({"error": str(error).splitlines()[0]}, status_code=422)

    @app.get("/health")
    async def health():
        store = service.store
        return {"status": "ok", **service.engine.describe(),
                "collections": len(store.names()) if store else 0,
                "mean_batch": service.engine.mean_batch,
                "api_key_required_for_writes": bool(settings.api_key), "max_upload_mb": settings.max_upload_mb,
                "max_megapixels": settings.max_megapixels}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(PAGE / "index.html", media_type="text/html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")
    app.include_router(routes_collections.router)
    app.include_router(routes_models.router)
    app.include_router(routes_video.router)
    # Outermost first: CORS (only when asked for), then the limits before anything reads a body.
    app.add_middleware(LimitsMiddleware, max_body=settings.max_upload_bytes, workers=settings.workers,
                       queue=settings.queue)
    if settings.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors), allow_methods=["*"],
                           allow_headers=["*"])
    return app
