"""One file format for everything finegrain writes and reads back: models, detectors, checkpoints.

An artifact is a safetensors file: the tensors, plus a JSON *manifest* in the header's metadata
(``{"finegrain": "<json>"}``). Reading one parses a JSON header and copies tensor bytes; nothing is
ever unpickled, so a planted file cannot run code. The manifest says what the file is (``kind``) and
everything needed to use it; nested training state (optimiser, scheduler) is stored with
``pack_state``, which swaps each tensor for a reference into the tensor table.

Files from finegrain 0.1 were torch pickles; they are recognised by their first bytes and refused with
the command that converts them (``finegrain convert``, see ``finegrain.legacy``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from finegrain.errors import FinegrainError
from finegrain.utils import atomic_write

FORMAT = "finegrain"
VERSION = 2
KINDS = ("embedding", "score", "meta", "detector", "checkpoint")
_KEY = "finegrain"
_TENSOR_REF, _ITEMS_REF, _TUPLE_REF = "__tensor__", "__items__", "__tuple__"


class ArtifactError(FinegrainError):
    """A file that is not a usable finegrain artifact (the message names the file and why)."""


class LegacyFileError(ArtifactError):
    """A finegrain 0.1 torch-pickle file: it is not loaded, the message says how to convert it."""


@dataclass
class Artifact:
    manifest: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    path: Path | None = None

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def sub(self, prefix: str) -> dict[str, torch.Tensor]:
        return tensors_under(self.tensors, prefix)


def tensors_under(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.`` with the prefix removed (a state dict, a component's weights)."""
    start = prefix + "."
    return {k[len(start):]: v for k, v in tensors.items() if k.startswith(start)}


def fingerprint(manifest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of the manifest's content (without provenance fields) and every tensor's name, type and bytes.

    Two files with one fingerprint embed any image identically; a gallery records it to refuse mixing spaces.
    """
    ignored = {"fingerprint", "thresholds", "provenance", "train_config", "tta"}
    digest = hashlib.sha256(json.dumps({k: v for k, v in manifest.items() if k not in ignored}, sort_keys=True,
                                       default=str).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def write_artifact(path: Path | str, manifest: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write atomically (a killed writer leaves the previous file); returns the path."""
    if manifest.get("kind") not in KINDS:
        raise ArtifactError(f"{path}: unknown artifact kind {manifest.get('kind')!r}")
    # CPU, contiguous, unshared copies: safetensors refuses tensors that share storage.
    table = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    full = {"format": FORMAT, "version": VERSION, **manifest}
    full["fingerprint"] = fingerprint(full, table)
    data = save_safetensors(table, metadata={_KEY: json.dumps(full, allow_nan=True)})
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return path


def _check_header(path: Path) -> None:
    """Refuse a torch pickle (a zip, or a raw pickle) before anything tries to parse it. A safetensors file
    starts with its header's length (8 bytes, little-endian) and then the header's opening brace."""
    with path.open("rb") as f:
        head = f.read(9)
    length = int.from_bytes(head[:8], "little")
    if head[8:9] == b"{" and 8 + length <= path.stat().st_size:
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise LegacyFileError(f"{path} is a torch pickle from finegrain 0.1 and is not loaded as it is; "
                              f"convert it once with 'finegrain convert {path}'")


def _open(path: Path | str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: file not found")
    if path.stat().st_size < 8:
        raise ArtifactError(f"{path}: not a finegrain file (too short)")
    _check_header(path)
    return path


def _manifest_of(path: Path, metadata: dict[str, str] | None) -> dict[str, Any]:
    if not metadata or _KEY not in metadata:
        raise ArtifactError(f"{path}: a safetensors file without a finegrain manifest")
    try:
        manifest = json.loads(metadata[_KEY])
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: the finegrain manifest is not valid JSON ({e.msg})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("kind") not in KINDS:
        raise ArtifactError(f"{path}: the manifest does not describe a finegrain artifact")
    if manifest.get("version") != VERSION:
        raise ArtifactError(f"{path}: format version {manifest.get('version')!r}; this finegrain reads {VERSION}")
    return manifest


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest alone (the header is read, the tensors are not)."""
    path = _open(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return _manifest_of(path, f.metadata())
    except SafetensorError as e:
        raise ArtifactError(f"{path}: not a finegrain file ({e})") from None


def read_artifact(path: Path | str, kinds: tuple[str, ...] = KINDS) -> Artifact:
    """Manifest and tensors of ``path``; a kind outside ``kinds`` is an error naming both."""
    path = _open(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            manifest = _manifest_of(path, f.metadata())
            if manifest["kind"] not in kinds:
                raise ArtifactError(f"{path}: a {manifest['kind']} file, where a {' or '.join(kinds)} file is needed")
            return Artifact(manifest, {k: f.get_tensor(k) for k in f.keys()}, path)  # noqa: SIM118
    except SafetensorError as e:
        raise ArtifactError(f"{path}: not a finegrain file ({e})") from None


# -- nested state (optimisers, schedulers) -----------------------------------------------------------
def pack_state(state: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of ``state`` with each tensor moved into ``tensors`` (under ``prefix.N``).

    Dicts with non-string keys (an optimiser's per-parameter state) and tuples survive the round trip.
    """
    if isinstance(state, torch.Tensor):
        key = f"{prefix}.{len(tensors)}"
        tensors[key] = state
        return {_TENSOR_REF: key}
    if isinstance(state, Mapping):
        if all(isinstance(k, str) for k in state):
            return {k: pack_state(v, prefix, tensors) for k, v in state.items()}
        return {_ITEMS_REF: [[k, pack_state(v, prefix, tensors)] for k, v in state.items()]}
    if isinstance(state, tuple):
        return {_TUPLE_REF: [pack_state(v, prefix, tensors) for v in state]}
    if isinstance(state, list):
        return [pack_state(v, prefix, tensors) for v in state]
    if state is None or isinstance(state, (str, bool, int, float)):
        return state
    if hasattr(state, "item"):  # numpy and torch scalars
        return state.item()
    raise ArtifactError(f"cannot store a {type(state).__name__} in a finegrain file")


def unpack_state(packed: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of ``pack_state``."""
    if isinstance(packed, dict):
        if set(packed) == {_TENSOR_REF}:
            return tensors[packed[_TENSOR_REF]]
        if set(packed) == {_ITEMS_REF}:
            return {k: unpack_state(v, tensors) for k, v in packed[_ITEMS_REF]}
        if set(packed) == {_TUPLE_REF}:
            return tuple(unpack_state(v, tensors) for v in packed[_TUPLE_REF])
        return {k: unpack_state(v, tensors) for k, v in packed.items()}
    if isinstance(packed, list):
        return [unpack_state(v, tensors) for v in packed]
    return packed
