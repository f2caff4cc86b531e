"""What ``finegrain serve`` is started with; errors name the flag."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finegrain.devices import resolve_device
from finegrain.errors import ConfigError

API_KEY_ENV = "FINEGRAIN_API_KEY"


@dataclass
class ServeSettings:
    model: str | None  # an embedding (or combined) model: collections, search, identify, verify, explain
    data: str  # where collections live
    scorer: str | None = None
    detector: str | None = None  # None: the bundled face detector
    api_key: str | None = None
    max_upload_mb: float = 10.0
    max_megapixels: float = 40.0
    cors: tuple[str, ...] = ()
    workers: int = 4  # requests processed at once; the models themselves run one batch at a time
    queue: int = 64  # requests waiting beyond those; more is a 503
    threshold: float | None = None  # identify/verify cosine threshold; None: the model's stored one, else 0.5
    batch_wait_ms: float = 5.0  # how long a request waits for others to share its network batch
    reembed: bool = False
    device: str = "auto"  # where the models compute (--device); checked when the service starts

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0:
            raise ConfigError(f"--max-upload-mb must be positive, got {self.max_upload_mb}")
        if self.max_megapixels <= 0:
            raise ConfigError(f"--max-megapixels must be positive, got {self.max_megapixels}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be 1 or more, got {self.workers}")
        if self.queue < 0:
            raise ConfigError(f"--queue must be 0 or more, got {self.queue}")
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"--threshold is a cosine similarity between -1 and 1, got {self.threshold}")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"--batch-wait-ms must be 0 or more, got {self.batch_wait_ms}")
        resolve_device(self.device)  # a GPU this machine lacks is refused before anything starts
        if self.model is None and self.scorer is None:
            raise ConfigError("--model or --scorer: the service needs at least one model")
        if Path(self.data).exists() and not Path(self.data).is_dir():
            raise ConfigError(f"--data {self.data}: exists and is not a folder")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)
