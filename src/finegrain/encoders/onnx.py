"""``finegrain export --onnx``: a model as one ONNX graph, checked against ONNX Runtime before it is kept.

The graph takes RGB images scaled to [0, 1], ``N×3×S×S`` float32 (S: the model's input size), and holds
everything the encoder does after resizing: the colour normalisation, the network, the mirror view with
``--tta flip``, and the feature normaliser. Its output is what ``finegrain embed`` (or ``score``) gives.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.encoders.encoder import Encoder, SingleEncoder
from finegrain.encoders.loader import load_encoder
from finegrain.encoders.meta import MetaEncoder
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.errors import ConfigError, FinegrainError
from finegrain.utils import atomic_write

TOLERANCE = 1e-4


class _Normalizer(nn.Module):
    def __init__(self, normalizer: FeatureNormalizer | None):
        super().__init__()
        n = normalizer
        self.register_buffer("mean", torch.from_numpy(n.mean) if n is not None and n.mean is not None else None)
        self.register_buffer("projection", torch.from_numpy(n.projection)
                             if n is not None and n.projection is not None else None)
        self.active = n is not None

    def forward(self, x: Tensor) -> Tensor:
        if not self.active:
            return x
        if self.mean is not None:
            x = x - self.mean
        if self.projection is not None:
            x = x @ self.projection
        return F.normalize(x, dim=1, eps=1e-12)


class _Single(nn.Module):
    def __init__(self, encoder: SingleEncoder):
        super().__init__()
        self.model = encoder.model
        self.flip = "flip" in encoder.tta
        self.score = encoder.output == "score"
        self.register_buffer("mean", torch.tensor(encoder.preprocess.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(encoder.preprocess.std).view(1, 3, 1, 1))
        self.normalizer = _Normalizer(encoder.normalizer)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        out = self.model(x)
        if self.flip:
            both = out + self.model(torch.flip(x, dims=[3]))
            out = both / 2 if self.score else F.normalize(both, dim=1)
        return out if self.score else self.normalizer(out)


class _Meta(nn.Module):
    def __init__(self, encoder: MetaEncoder):
        super().__init__()
        self.parts = nn.ModuleList(_Single(c) for c in encoder.components)
        self.normalizer = _Normalizer(encoder.normalizer)

    def forward(self, images: Tensor) -> Tensor:
        out = torch.cat([part(images) for part in self.parts], dim=1) / float(np.sqrt(len(self.parts)))
        return self.normalizer(out)


def _graph(encoder: Encoder) -> nn.Module:
    if set(encoder.tta) - {"flip"}:
        raise ConfigError(f"--tta {','.join(encoder.tta)}: only flip can be built into an ONNX graph (crops and "
                          "scales resample the image); export without them")
    if isinstance(encoder, MetaEncoder):
        sizes = {c.image_size for c in encoder.components}
        if len(sizes) > 1:
            raise ConfigError(f"this combined model's components take {sorted(sizes)} px images, which one ONNX "
                              "input cannot feed exactly; export each component")
        return _Meta(encoder).eval()
    return _Single(encoder).eval()


def export_onnx(run: str | Path, out: str | Path, tta: str | None = None) -> dict:
    """Write the ONNX graph of ``run`` to ``out`` after checking ONNX Runtime's outputs against PyTorch's."""
    import onnxruntime

    encoder = load_encoder(run, tta=tta)
    graph = _graph(encoder)
    size = encoder.image_size
    example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.export")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing are not the user's concern
            torch.onnx.export(graph, (example,), str(tmp), input_names=["images"], output_names=["output"],
                              dynamic_axes={"images": {0: "n"}, "output": {0: "n"}}, dynamo=False)
    except Exception as e:  # noqa: BLE001 - an unsupported operator, said in one line
        tmp.unlink(missing_ok=True)
        reason = str(e).splitlines()[0][:200]
        raise FinegrainError(f"{run}: this network cannot be exported to ONNX ({type(e).__name__}: {reason})") from None
    try:
        check = torch.rand(5, 3, size, size, generator=torch.Generator().manual_seed(1))
        session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(None, {"images": check.numpy()})[0]
        with torch.inference_mode():
            want = graph(check).numpy()
        error = float(np.max(np.abs(got - want)))
        if not error <= TOLERANCE:
            raise FinegrainError(f"{run}: ONNX Runtime's outputs differ from PyTorch's by {error:.2e} "
                                 f"(more than {TOLERANCE}); the export was not written")
        atomic_write(out, lambda target: target.write_bytes(tmp.read_bytes()))
    finally:
        tmp.unlink(missing_ok=True)
    return {"onnx": str(out), "input": ["N", 3, size, size], "input_range": "RGB in [0, 1]",
            "output": ["N", encoder.output_size] if encoder.output == "embedding" else ["N"],
            "tta": list(encoder.tta), "max_abs_difference": error, "fingerprint": encoder.fingerprint}
