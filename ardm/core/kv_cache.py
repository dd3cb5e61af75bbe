"""Keys/values of settled positions, kept between denoiser passes (SPEC §11.6, §5.3).

The entries live in preallocated per-layer buffers [B, H, capacity, hd]. A pass over new positions
writes their keys/values straight after the cached ones (`extend`) and attends to the buffer's
prefix, a view: no concatenation copies the whole cache at every layer of every step, which at
batch 1 was 28% of a cached pass's time in torch.profiler (docs/speed.md). Entries past `length` are scratch
until `commit` keeps them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

Layer = tuple[torch.Tensor, torch.Tensor]


class KVCache:
    """Keys/values of positions [0, length), per layer [B, H, length, hd]: the settled prefix
    (exact cache), or a span kept from a refresh pass (approximate cache)."""

    def __init__(self, layers: list[Layer] | None = None) -> None:
        """`layers`: per layer (keys, values) [B, H, n, hd] to hold as they are (no copy; the first
        `extend` past them moves them to a larger buffer)."""
        self._keys = [k for k, _ in layers or []]
        self._values = [v for _, v in layers or []]
        self.length = self._keys[0].shape[2] if self._keys else 0
        self.beta: torch.Tensor | None = None  # ARMD: the cached positions' block ids [B, length]

    @property
    def layers(self) -> list[Layer]:
        """Per layer (keys, values) [B, H, length, hd] (views of the buffers)."""
        n = self.length
        return [(k[:, :, :n], v[:, :, :n]) for k, v in zip(self._keys, self._values)]

    def span(self, lo: int, hi: int) -> KVCache:
        """A cache holding the entries of positions [lo, hi) (views: extending it copies them first)."""
        return KVCache([(k[:, :, lo:hi], v[:, :, lo:hi]) for k, v in self.layers])

    def _reserve(self, j: int, like: torch.Tensor, n: int) -> None:
        """Room for n entries in layer j's buffers (grown by doubling, entries kept)."""
        B, H, _, hd = like.shape
        if j == len(self._keys):  # a layer seen for the first time: empty buffers of its shape
            self._keys.append(like.new_empty(B, H, 0, hd))
            self._values.append(like.new_empty(B, H, 0, hd))
        old = self._keys[j]
        if old.shape[2] >= n:
            return
        capacity = max(n, 2 * old.shape[2])
        keys, values = like.new_empty(B, H, capacity, hd), like.new_empty(B, H, capacity, hd)
        if self.length:
            keys[:, :, :self.length] = old[:, :, :self.length]
            values[:, :, :self.length] = self._values[j][:, :, :self.length]
        self._keys[j], self._values[j] = keys, values

    def extend(self, j: int, k: torch.Tensor, v: torch.Tensor) -> Layer:
        """Layer j's cached keys/values followed by k, v [B, H, W, hd] (written in place after the
        cached entries, not yet kept: see `commit`)."""
        n = self.length + k.shape[2]
        self._reserve(j, k, n)
        keys, values = self._keys[j], self._values[j]
        keys[:, :, self.length:n] = k
        values[:, :, self.length:n] = v
        return keys[:, :, :n], values[:, :, :n]

    def slots(self, n_layer: int) -> list[Callable[[torch.Tensor, torch.Tensor], Layer]]:
        """One `extend` per layer, what the transformer's attention calls with its new keys/values."""
        return [functools.partial(self.extend, j) for j in range(n_layer)]

    def commit(self, n: int) -> None:
        """Keep the first n entries written by the last `extend` of every layer."""
        self.length += n

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` [B'] of every kept entry, in that order (beam search's reshuffle). The same
        number of rows keeps the buffers (only the kept entries move: the next `extend` writes in
        place); another number takes new buffers of the kept entries."""
        n = self.length
        for buffers in (self._keys, self._values):
            for j, buf in enumerate(buffers):
                if buf.shape[0] == index.shape[0]:
                    buf[:, :, :n] = buf[index, :, :n]
                else:
                    buffers[j] = buf[index, :, :n]

    def append(self, kvs: list[Layer]) -> None:
        """Keep per-layer (keys, values) [B, H, W, hd] after the cached entries."""
        for j, (k, v) in enumerate(kvs):
            self.extend(j, k, v)
        self.commit(kvs[0][0].shape[2])
