"""Beam search for the causal prefix-LM twin (SPEC §11.7 baseline: greedy and beam).

Batched over sources: each source keeps `beam` hypotheses; a hypothesis that has emitted EOS only
extends with EOS at no cost. The final choice divides the log-probability by the GNMT length
penalty ((5 + |y|) / 6)^alpha (Wu et al. 2016), |y| counting the tokens through the first EOS.
Each step is one forward pass over the hypotheses (1 NFE per step); with `cache` (a
TransformerDenoiser) the keys/values of the tokens already written are kept (exact for a causal
model, SPEC §11.6) and reordered with the hypotheses, so a step computes only the newest token.
"""

from __future__ import annotations

import torch

from ardm.core.kv_cache import KVCache
from ardm.errors import ArdmError


@torch.no_grad()
def beam_search(model, prompts: torch.Tensor, max_new: int, eos_id: int, beam: int = 4,
                alpha: float = 0.6, cache: bool = True) -> tuple[torch.Tensor, int]:
    """([N, P + max_new] tokens of the best hypothesis per prompt, EOS after the first one; the
    number of forward passes). prompts [N, P]; beam = 1 is greedy decoding; cache=False recomputes
    every position at every step (models without `forward_cached`)."""
    if beam < 1:
        raise ArdmError(f"beam width must be >= 1, got {beam}")
    if not model.cfg.causal:
        raise ArdmError("beam search needs a causal (AR) model")
    N, P = prompts.shape
    if P + max_new > model.cfg.max_len:
        raise ArdmError(f"prompt ({P}) + {max_new} tokens exceed the model's context ({model.cfg.max_len})")
    x = prompts.repeat_interleave(beam, 0)  # [N * beam, P]
    scores = torch.zeros(N, beam, dtype=torch.float64, device=x.device)
    scores[:, 1:] = -torch.inf  # start from one hypothesis per source
    done = torch.zeros(N * beam, dtype=torch.bool, device=x.device)
    lengths = torch.zeros(N * beam, dtype=torch.long, device=x.device)
    rows = torch.arange(N, device=x.device)[:, None]
    passes = 0
    kv = KVCache() if cache else None
    for _ in range(max_new):
        if kv is None:
            logits, _ = model(x)
        elif kv.length == 0:  # the prompt, once per source; its keys/values copied to every beam
            logits, _ = model.forward_cached(prompts, None, kv, commit=P, last_only=True)
            logits = logits.repeat_interleave(beam, 0)
            kv.reorder(torch.arange(N, device=x.device).repeat_interleave(beam))
        else:  # only the newest token
            logits, _ = model.forward_cached(x[:, -1:], None, kv, commit=1)
        passes += 1
        lp = logits[:, -1].double().log_softmax(-1)  # [N * beam, V]
        lp[done] = -torch.inf
        lp[done, eos_id] = 0.0
        V = lp.shape[1]
        top, idx = (scores.reshape(-1, 1) + lp).reshape(N, beam * V).topk(beam, dim=1)
        src, tok = idx // V, idx % V  # [N, beam]
        pick = (rows * beam + src).reshape(-1)
        x = torch.cat([x[pick], tok.reshape(-1, 1)], 1)
        if kv is not None:
            kv.reorder(pick)
        lengths = lengths[pick] + (~done[pick]).long()
        done = done[pick] | (tok.reshape(-1) == eos_id)
        scores = top
        if bool(done.all()):
            break
    penalty = ((5.0 + lengths.double()) / 6.0) ** alpha
    best = (scores.reshape(-1) / penalty).reshape(N, beam).argmax(1)
    out = x[(torch.arange(N, device=x.device) * beam + best)]
    pad = torch.full((N, P + max_new - out.shape[1]), eos_id, dtype=out.dtype, device=out.device)
    return torch.cat([out, pad], 1), passes
