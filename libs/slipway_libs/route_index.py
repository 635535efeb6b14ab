"""Routes picked by method and path segments, the way Starlette's router picks them, cheaply.

Starlette tries a regular expression per route in turn; with a hundred routes that is a sizeable
share of a cheap request. Here the method and the number of path segments pick the few routes a
request can be, in the order they were given, and the first whose fixed segments are equal
wins. A ``{name}`` parameter matches one non-empty segment, as Starlette's default (``str``)
convertor does; a route with another convertor (``{id:int}``, ``{path:path}``) or a segment
that is more than one parameter (``{a}-{b}``) is refused at construction, and a path holding a
newline matches nothing (Starlette's ``$`` also matches before a final newline: the router
picks ``/users/me`` for ``/users/me%0A``), so what this index picks is what the router would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    target: T
    # the fixed segments (the prefix's at least) and what they must be
    fixed: Callable[[list[str]], tuple[str, ...]]
    literals: tuple[str, ...]
    names: tuple[str, ...]  # the parameters, in the path's order
    values: Callable[[list[str]], tuple[str, ...]]

    @classmethod
    def of(cls, target: T, path: str, segments: list[str]) -> _Entry[T]:
        fixed = [i for i, s in enumerate(segments) if not _is_param(s)]
        params = [i for i, s in enumerate(segments) if _is_param(s)]
        names = tuple(segments[i][1:-1] for i in params)
        if not all(name.isidentifier() for name in names) or any(
            "{" in s or "}" in s for i, s in enumerate(segments) if i not in params
        ):  # a converter, or a segment that is more (or less) than one parameter
            raise ValueError(f"{path}: only whole-segment {{name}} parameters are indexed")
        return cls(target, _pick(fixed), tuple(segments[i] for i in fixed), names, _pick(params))


class RouteIndex(Generic[T]):
    """``routes``: (method, full path template, what the route is), in the router's order."""

    def __init__(self, routes: Iterable[tuple[str, str, T]]) -> None:
        self._by_shape: dict[tuple[str, int], list[_Entry[T]]] = {}
        for method, path, target in routes:
            if not path.startswith("/"):
                raise ValueError(f"{path}: a path template starts with /")
            segments = path.split("/")
            shape = (method, len(segments))
            self._by_shape.setdefault(shape, []).append(_Entry.of(target, path, segments))

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        if "\n" in path:
            return None  # the router's regular expressions read it otherwise: theirs to pick
        segments = path.split("/")
        for entry in self._by_shape.get((method, len(segments)), ()):
            if entry.fixed(segments) == entry.literals:
                values = entry.values(segments)
                if "" not in values:  # a parameter is one non-empty segment
                    return entry.target, dict(zip(entry.names, values, strict=True))
        return None


def _pick(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The segments at ``indices`` as a tuple, picked in C (``itemgetter``: this runs for every
    request and candidate route; ``itemgetter`` of one index gives the item, not a tuple)."""
    if len(indices) == 1:
        (only,) = indices
        return lambda segments: (segments[only],)
    if not indices:
        return lambda _: ()
    return itemgetter(*indices)


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1
