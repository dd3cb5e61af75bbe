"""Likelihood of text under a trained model (SPEC §2.1, §2.5, §8.2).

- Diffusion models: the MDLM absorbing NELBO, whatever noise they were trained with (SPEC §2.5:
  every denoiser defines an absorbing-chain model, so bits of models trained with different noises
  are comparable). Monte-Carlo over t with stratified draws per sequence; the standard error is
  the Monte-Carlo error of the total (between-draw variance), not data variance.
- Causal models: the exact negative log-likelihood.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ardm.core.denoiser import Denoiser
from ardm.core.objectives import denoise, strided_blocks, token_nll
from ardm.data.tokens import encode, eval_blocks
from ardm.errors import ArdmError

LN2 = math.log(2.0)


@dataclass
class LikelihoodReport:
    estimator: str
    bits_per_token: float
    bits_per_char: float
    bits_per_token_se: float  # Monte-Carlo standard error (0 for exact estimators)
    bits_per_char_se: float
    perplexity_bound: float  # exp(nats per token); an upper bound for diffusion ELBOs
    tokens: int
    chars: int
    windows: int
    seq_len: int
    draws: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def absorbing_nelbo(model: Denoiser, x: torch.Tensor, draws: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sequence NELBO in nats for each draw: [B, draws]. x [B, L] clean tokens.

    L(x) = E_t E_z [ (1/t) sum_{i: z_i = MASK} -log q(x_i | z) ], t stratified across the draws.
    """
    B, L = x.shape
    mask_id = model.cfg.vocab_size
    u = (torch.rand(B, 1, generator=generator) + torch.arange(draws)[None, :] / draws) % 1.0
    out = torch.empty(B, draws)
    for d in range(draws):
        t = (1e-3 + (1 - 1e-3) * u[:, d]).to(x.device)  # MDLM t_eps
        masked = torch.rand(B, L, generator=generator).to(x.device) < t[:, None]
        z = torch.where(masked, torch.full_like(x, mask_id), x)
        logits, _ = denoise(model, z, t[:, None].expand(B, L), x)
        out[:, d] = ((token_nll(logits, x) * masked).sum(1) / t).cpu()
    return out


@torch.no_grad()
def order_nll(model: Denoiser, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Exact -log p(x | order) of a fixed generation order (SPEC §4.2(i)): D passes, one per
    variable, each scoring order[k] given the variables order[:k]. x [B, D], order [D] -> [B] nats."""
    B, D = x.shape
    mask_id = model.cfg.vocab_size
    z = torch.full_like(x, mask_id)
    total = torch.zeros(B, dtype=torch.float64)
    for k, pos in enumerate(order.tolist()):
        t = torch.full((B, D), (D - k) / D, device=x.device)
        logits, _ = model(z, t)
        total += token_nll(logits[:, pos:pos + 1], x[:, pos:pos + 1])[:, 0].double().cpu()
        z[:, pos] = x[:, pos]
    return total


@torch.no_grad()
def armd_nll(model: Denoiser, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Exact -log p(x) of an ARMD model's K-step parallel model with block ids beta [L] or [B, L],
    in ONE pass (SPEC §5.3): sum_i -log p(x_i | x_{beta < beta_i}). x [B, L] -> [B] nats."""
    beta = beta.to(x.device).float().expand(x.shape)
    logits, _ = model(x, beta)
    return token_nll(logits, x).sum(1).double().cpu()


@torch.no_grad()
def causal_nll(model: Denoiser, windows: torch.Tensor) -> torch.Tensor:
    """Exact NLL (nats) of windows[:, 1:] given the previous tokens. [W, L + 1] -> [W]"""
    logits, _ = model(windows[:, :-1])
    return token_nll(logits, windows[:, 1:]).sum(1).cpu()


ESTIMATORS = ("nelbo", "exact_order")


def _describe(causal: bool, estimator: str, draws: int, attention: str = "") -> str:
    if causal:
        return "exact causal NLL"
    if attention == "armd":
        return "exact ARMD NLL, identity order, one pass"
    if estimator == "exact_order":
        return f"exact NLL of {draws} random order(s) per window"
    return f"MDLM absorbing NELBO, {draws} stratified t draws"


def evaluate_text(model: Denoiser, tokenizer, text: str, seq_len: int, *, draws: int = 8,
                  batch_size: int = 32, seed: int = 0, device: str = "cpu", progress: bool = False,
                  estimator: str = "nelbo", max_windows: int = 0, record_len: int = 0) -> LikelihoodReport:
    """Likelihood of `text` in non-overlapping windows of seq_len tokens (see ardm/data.py).

    Diffusion models: estimator "nelbo" (Monte-Carlo bound, `draws` per window) or "exact_order"
    (the exact NLL of `draws` random generation orders per window, SPEC §4.2(i): seq_len passes
    each). Causal models: always the exact NLL. max_windows > 0 scores only the first windows.
    """
    from tqdm import tqdm

    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}")
    if estimator == "exact_order" and model.cfg.attention == "block_causal":
        raise ArdmError("estimator exact_order needs a bidirectional denoiser; a block_causal model's "
                        "likelihood is the NELBO of its blocks (estimator nelbo)")
    model.eval()
    ids = encode(tokenizer, text)
    causal = model.cfg.causal
    overlap = 1 if causal else 0
    if record_len:  # fixed-length records (e.g. Sudoku): one window per record, from its start
        if record_len < seq_len + overlap:
            raise ArdmError(f"records of {record_len} tokens are shorter than a window of "
                            f"{seq_len + overlap}")
        n = ids.numel() // record_len
        windows = ids[: n * record_len].view(n, record_len)[:, : seq_len + overlap]
    else:
        windows = eval_blocks(ids, seq_len, overlap=overlap)
    windows = windows[:max_windows] if max_windows > 0 else windows
    gen = torch.Generator().manual_seed(seed)
    totals = []  # nats per window, [W, draws]
    for start in tqdm(range(0, len(windows), batch_size), desc="eval", disable=not progress, leave=False):
        x = windows[start:start + batch_size].to(device)
        if causal:
            totals.append(causal_nll(model, x)[:, None])
        elif model.cfg.attention == "armd":  # the identity order: exact, K = L, one pass
            totals.append(armd_nll(model, x, strided_blocks(x.shape[1], 1))[:, None])
        elif estimator == "exact_order":
            orders = [torch.randperm(seq_len, generator=gen) for _ in range(draws)]
            totals.append(torch.stack([order_nll(model, x, o) for o in orders], 1))
        else:
            totals.append(absorbing_nelbo(model, x, draws, gen))
    per = torch.cat(totals).double()  # [W, D]
    scored = windows[:, 1:] if causal else windows
    n_tokens = scored.numel()
    n_chars = len(tokenizer.decode(scored.flatten().tolist()))
    total = per.mean(1).sum().item()
    if per.shape[1] > 1:  # MC standard error of the total: sum over windows of var/D
        se_total = math.sqrt((per.var(1, unbiased=True) / per.shape[1]).sum().item())
    else:
        se_total = 0.0
    bpt = total / n_tokens / LN2
    return LikelihoodReport(
        estimator=_describe(causal, estimator, per.shape[1], model.cfg.attention),
        bits_per_token=bpt, bits_per_char=total / n_chars / LN2,
        bits_per_token_se=se_total / n_tokens / LN2, bits_per_char_se=se_total / n_chars / LN2,
        perplexity_bound=math.exp(total / n_tokens), tokens=n_tokens, chars=n_chars,
        windows=len(windows), seq_len=seq_len, draws=per.shape[1])
