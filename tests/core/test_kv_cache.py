"""KVCache: entries written in place after the cached ones, kept only on commit, grown on demand."""

import torch

from ardm.core.kv_cache import KVCache


def _kv(n: int, fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((2, 3, n, 4), fill), torch.full((2, 3, n, 4), -fill)


def test_extend_returns_cached_then_new_and_commit_keeps_a_prefix():
    cache = KVCache()
    cache.append([_kv(5, 1.0), _kv(5, 2.0)])
    keys, values = cache.extend(1, *_kv(3, 7.0))
    assert keys.shape == (2, 3, 8, 4) and cache.length == 5
    assert torch.equal(keys[:, :, :5], torch.full((2, 3, 5, 4), 2.0))
    assert torch.equal(values[:, :, 5:], torch.full((2, 3, 3, 4), -7.0))
    cache.extend(0, *_kv(3, 6.0))
    cache.commit(2)  # keep the first two of the three just written
    assert cache.length == 7
    assert torch.equal(cache.layers[0][0][:, :, 5:], torch.full((2, 3, 2, 4), 6.0))
    assert torch.equal(cache.layers[1][1][:, :, :5], torch.full((2, 3, 5, 4), -2.0))


def test_growth_keeps_entries_and_spans_do_not_write_into_their_parent():
    cache = KVCache([_kv(4, 1.0)])  # held as given: capacity 4
    cache.append([_kv(10, 3.0)])  # grows
    assert cache.length == 14
    assert torch.equal(cache.layers[0][0][:, :, :4], torch.full((2, 3, 4, 4), 1.0))
    part = cache.span(0, 4)
    part.extend(0, *_kv(2, 9.0))  # past its end: moved to a buffer of its own
    assert torch.equal(cache.layers[0][0][:, :, 4:6], torch.full((2, 3, 2, 4), 3.0))


def test_slots_are_one_extend_per_layer():
    cache = KVCache()
    slots = cache.slots(2)
    slots[0](*_kv(1, 1.0))
    slots[1](*_kv(1, 2.0))
    cache.commit(1)
    assert [float(k[0, 0, 0, 0]) for k, _ in cache.layers] == [1.0, 2.0]
