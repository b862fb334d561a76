"""Options: small typed dataclasses that own, validate and save the settings of one component.

A component (a loss, a scorer, a user tower, the text encoder, the training loop) is described
by an :class:`Options` dataclass: its fields are the settings with commented defaults,
``validate()`` checks them with messages that name the parameter, ``to_dict()`` is its saved
form (JSON, with a ``"type"`` key for parts that come in several kinds) and ``from_dict``
rebuilds it. Families of interchangeable parts (user towers, scorers, losses) are explicit
registries, and :func:`resolve` turns a shorthand (``"mean"``), a saved dict or an instance
into a validated part.

>>> from lmrec.losses import LOSSES
>>> resolve(LOSSES, "hinge", owner="LMRanker", param="loss")
Hinge(margin=1.0)
>>> resolve(LOSSES, {"type": "hinge", "margin": 0.5}, owner="LMRanker", param="loss")
Hinge(margin=0.5)
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping, TypeVar

from lmrec.errors import ConfigError

T = TypeVar("T", bound="Options")


@dataclass
class Options:
    """Base of every options dataclass. ``kind`` names the class in its family's registry."""

    kind: ClassVar[str] = ""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the parameter when a setting is out of range."""

    def to_dict(self) -> dict[str, Any]:
        """The saved form: ``{"type": kind, field: value, ...}`` (``type`` only for registry parts)."""
        out: dict[str, Any] = {"type": self.kind} if self.kind else {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Options) else \
                list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls: type[T], value: Mapping[str, Any]) -> T:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error listing the known ones."""
        data = {k: v for k, v in value.items() if k != "type"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} field(s) {unknown}; supported: {sorted(known)}.")
        return cls(**data)

    @classmethod
    def from_any(cls: type[T], value: T | Mapping[str, Any] | None) -> T:
        """Accept an instance, a dict of its fields (as saved in manifests) or None (defaults)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigError(f"{cls.__name__} must be given as {cls.__name__}(...) or a dict of its fields; "
                              f"got {type(value).__name__} {value!r}.")
        return cls.from_dict(value)

    def check_range(self, name: str, low: float | None = None, high: float | None = None, *,
                    low_open: bool = False, high_open: bool = True) -> None:
        """Raise unless ``low <= self.name < high`` (bounds as given; None: unbounded)."""
        value = getattr(self, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            lo = "" if low is None else f"{'(' if low_open else '['}{low}, "
            hi = "" if high is None else f"{high}{')' if high_open else ']'}"
            where = f"in {lo}{hi}" if low is not None and high is not None else \
                f"{'>' if low_open else '>='} {low}" if low is not None else f"{'<' if high_open else '<='} {high}"
            raise ConfigError(f"The '{name}' parameter of {type(self).__name__} must be a number {where}; "
                              f"got {value!r}.")


def resolve(registry: Mapping[str, type[T]], value: Any, *, owner: str, param: str) -> T:
    """A validated part from an instance, a registry name or a saved dict ``{"type": name, ...}``."""
    names = ", ".join(repr(n) for n in registry)
    if isinstance(value, Options):
        if type(value) not in registry.values():
            raise ConfigError(f"The '{param}' parameter of {owner} must be one of {names} (or their options "
                              f"classes); got {type(value).__name__}.")
        part = value
    elif isinstance(value, str) or isinstance(value, Mapping):
        name = value if isinstance(value, str) else value.get("type")
        if name not in registry:
            raise ConfigError(f"The '{param}' parameter of {owner} must be one of {names}; got {name!r}.")
        part = registry[name]() if isinstance(value, str) else registry[name].from_dict(value)
    else:
        raise ConfigError(f"The '{param}' parameter of {owner} must be one of {names}, a dict with a 'type' "
                          f"key or an options object; got {type(value).__name__} {value!r}.")
    part.validate()
    return part  # type: ignore[return-value]


def as_saved(value: Any) -> Any:
    """An options object as its saved dict; anything else unchanged (for ``get_params``)."""
    return value.to_dict() if isinstance(value, Options) else value
