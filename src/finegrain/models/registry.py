"""Backbones by name, so configs and checkpoints refer to an architecture with a plain string."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from finegrain.errors import ConfigError
from finegrain.models.backbone import Backbone

B = TypeVar("B", bound=type[Backbone])

_REGISTRY: dict[str, type[Backbone]] = {}


def register_backbone(name: str) -> Callable[[B], B]:
    """Class decorator: ``@register_backbone("conv4")`` makes the class buildable by that name."""

    def decorate(cls: B) -> B:
        known = _REGISTRY.get(name)
        # Same class twice happens on module reload; a different class would silently shadow one.
        if known is not None and _qualname(known) != _qualname(cls):
            raise ConfigError(f"backbone name {name!r} is already registered to {_qualname(known)}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def list_backbones(growable: bool | None = None) -> list[str]:
    """Registered names; ``growable=True`` keeps the convolutional ones Net2Net can grow (not ``lbp``)."""
    return sorted(n for n, cls in _REGISTRY.items() if growable is None or cls.growable == growable)


def backbone_options(name: str) -> list[str]:
    """The keyword options a registered backbone accepts."""
    return [p for p in inspect.signature(_REGISTRY[name].__init__).parameters if p != "self"]


def input_norms(name: str) -> tuple[str, ...]:
    """The ``input_norm`` values a registered backbone takes (``fixed`` always)."""
    return _REGISTRY[name].input_norms


def is_growable(name: str) -> bool:
    return _REGISTRY[name].growable


def create_backbone(name: str, /, **kw: Any) -> Backbone:
    """Build a registered backbone. ``create_backbone(cfg["name"], **cfg)`` rebuilds from ``config()``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(list_backbones())}")
    cfg_name = kw.pop("name", name)
    if cfg_name != name:
        raise ConfigError(f"backbone name {name!r} does not match the config's name {cfg_name!r}")
    cls = _REGISTRY[name]
    input_norm = kw.pop("input_norm", "fixed")
    if input_norm not in cls.input_norms:
        raise ConfigError(f"backbone {name!r} takes input_norm {' or '.join(cls.input_norms)}, not {input_norm!r}")
    accepted = backbone_options(name)
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown option(s) for backbone {name!r}: {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted)}"
        )
    backbone = cls(**kw)
    backbone.input_norm = input_norm
    return backbone
