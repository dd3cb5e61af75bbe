"""Named registries (STYLE: registries, not string if-chains).

A `Registry` maps a name to a class or builder, refuses unknown names with one `ArdmError` that lists
the known ones, and is what the config validation and the CLI's help text read their choices from:

    NOISE_PROCESSES = Registry("noise.kind")
    @NOISE_PROCESSES.register("absorbing")
    class AbsorbingNoise(NoiseProcess): ...
    NOISE_PROCESSES["absorbing"]   # the class;  NOISE_PROCESSES["nope"] -> ArdmError
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from ardm.errors import ArdmError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """An ordered name -> entry mapping; `what` (and `plural`) name it in error messages."""

    def __init__(self, what: str, plural: str = "") -> None:
        self.what = what
        self.plural = plural or f"{what} values"
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function under `name` (once)."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.what}: {name!r} registered twice")
            self._entries[name] = entry
            return entry

        return add

    def add(self, name: str, entry: T) -> T:
        return self.register(name)(entry)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise ArdmError(f"unknown {self.what} {name!r}; known {self.plural}: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)
