"""A name → object registry that refuses duplicates and suggests the closest names for typos."""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from bench.errors import BenchError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def remove(self, name: str) -> None:
        """Forget ``name`` (plugins reloaded in one process); an unknown name is ignored."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise BenchError(f"unknown {self.kind} {name!r}", self.suggestion(name)) from None

    def suggestion(self, name: str) -> str:
        return did_you_mean(name, self._items, f"known {self.kind}s: " + ", ".join(sorted(self._items)), cutoff=0.5,
                            most=3)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
