"""Lossless compression with an order-agnostic / absorbing denoiser and rANS (SPEC §4.5).

Text is tokenized and cut into blocks of the model's sequence length. Each block is generated in a
fixed random order (seeded by the block index) in K parallel steps: equal steps, or the budget
planner's steps (SPEC §4.3) when loss components are given (`ardm compress --plan`). Step k's
distributions depend only on the variables of earlier steps, so the encoder runs the K passes,
then pushes each step's symbols in reverse order onto an ANS stack (`constriction`), and the
decoder pops step by step, running pass k once steps < k are decoded. Encoder and decoder share
one step loop (`_run_block`), single-threaded and batch 1, so both compute bit-identical
probabilities. Blocks share one ANS stack (pushed last block first), so the only overhead over
the model's NLL is one coder state per file. An ARMD checkpoint (SPEC §5.3) codes K strided steps
(beta = i mod K + 1) in one of two ways, recorded in the file: by default both sides run the K
steps with the KV cache of strided generation (`_run_armd_cached`: step k computes only the content
of step k - 1's tokens and step k's queries, so a block costs about one full pass on either side);
with `one_pass=True` the encoder gets every step's conditionals from ONE forward pass (`_run_armd`)
and the decoder must then run the K full passes that reproduce that pass's arithmetic.

File: magic "ARDMZ", the format version (a byte), the first 16 bytes of the denoiser's sha256,
then LEB128 varints: input bytes, tokens, block length, budget, 32-bit words; the plan (a byte: 0 =
equal steps (ARMD: one-pass encoding), 1 = the step sizes of a full block follow as varints; a
shorter last block scales those boundaries, 2 = ARMD's equal strided steps coded with the cache);
then the words. About 30 bytes in all before the words.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ardm.core.denoiser import Denoiser
from ardm.core.kv_cache import KVCache
from ardm.errors import ArdmError
from ardm.generation.planner import step_boundaries

MAGIC = b"ARDMZ"
EQUAL, PLANNED, ARMD_CACHED = 0, 1, 2  # the plan byte
FORMAT_VERSION = 2
SHA_BYTES = 16  # a 128-bit prefix of the model's sha256: enough to tell checkpoints apart


@contextmanager
def _single_thread():
    # floating-point reductions may depend on the thread count: pin it so encode == decode
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def scale_boundaries(bounds: list[int], n: int) -> list[int]:
    """A full block's boundaries (0 .. D) moved to a block of n variables, empty steps dropped."""
    D = bounds[-1]
    out = [0]
    for b in bounds[1:]:
        v = round(b * n / D)
        if v > out[-1]:
            out.append(v)
    return out


def _varints(values: list[int]) -> bytes:
    out = bytearray()
    for v in values:
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                break
    return bytes(out)


def _read_varint(blob: bytes, at: int, what: str) -> tuple[int, int]:
    """One LEB128 varint at `at`: (value, offset after it)."""
    v, shift = 0, 0
    while True:
        if at >= len(blob):
            raise ArdmError(f"compressed file is truncated ({what})")
        if shift > 63:
            raise ArdmError(f"compressed file is damaged ({what})")
        byte = blob[at]
        at += 1
        v |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return v, at


def _read_plan(blob: bytes, at: int, count_limit: int, total: int) -> tuple[list[int], int]:
    """Step sizes from `at` until they add up to `total`; (sizes, offset after them)."""
    sizes: list[int] = []
    while sum(sizes) < total:
        v, at = _read_varint(blob, at, "plan")
        if v == 0 or len(sizes) >= count_limit:
            raise ArdmError("compressed file is damaged (plan)")
        sizes.append(v)
    if sum(sizes) != total:
        raise ArdmError("compressed file is damaged (plan)")
    return sizes, at


def _order(n: int, block: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(1_000_003 + block))


@torch.no_grad()
def _run_block(model: Denoiser, bounds: list[int], block: int, choose) -> torch.Tensor:
    """Generate one block of bounds[-1] variables step by step;
    `choose(k, probs [m, V] float64) -> symbols [m]`."""
    n = bounds[-1]
    order = _order(n, block)
    z = torch.full((1, n), model.cfg.vocab_size, dtype=torch.long)
    for k in range(len(bounds) - 1):
        pos = order[bounds[k]:bounds[k + 1]]
        t = torch.full((1, n), (n - bounds[k]) / n)
        logits, _ = model(z, t)
        probs = logits[0, pos].double().softmax(-1).numpy()
        z[0, pos] = torch.as_tensor(np.asarray(choose(k, probs), dtype=np.int64))
    return z[0]


@torch.no_grad()
def _run_armd(model: Denoiser, n: int, K: int, choose, x: torch.Tensor | None = None) -> torch.Tensor:
    """An ARMD block (SPEC §5.3) in K strided steps, beta(i) = i mod K + 1 (K >= n: left to right).
    Encoding (x given): ONE pass gives every step's conditionals. Decoding: pass k on the tokens of
    steps < k. Pass k's query rows see exactly the inputs of the one-pass rows (the rest is masked
    out, and every pass has the same shapes), so both sides compute bit-identical probabilities."""
    beta = (torch.arange(n) % min(K, n) + 1).float()[None]
    z = torch.full((1, n), model.cfg.vocab_size, dtype=torch.long) if x is None else x[None]
    logits = model(z, beta)[0] if x is not None else None
    for k in range(1, min(K, n) + 1):
        pos = (beta[0] == k).nonzero().flatten()
        step_logits = logits if logits is not None else model(z, beta)[0]
        probs = step_logits[0, pos].double().softmax(-1).numpy()
        z[0, pos] = torch.as_tensor(np.asarray(choose(k - 1, probs, pos), dtype=np.int64))
    return z[0]


@torch.no_grad()
def _run_armd_cached(model: Denoiser, n: int, K: int, choose) -> torch.Tensor:
    """An ARMD block in K strided steps with strided generation's cache (SPEC §5.3): step k feeds the
    content of step k - 1's tokens (kept in the cache) and asks step k's queries, about 2n / K
    tokens a call and 2n in all. The encoder's `choose` returns the known tokens, the decoder's
    decodes them: the same calls on the same inputs and shapes, so bit-identical probabilities
    (not those of `_run_armd`'s one pass, which sums in another order)."""
    K = min(K, n)
    beta = torch.arange(n) % K + 1
    z = torch.full((1, n), model.cfg.vocab_size, dtype=torch.long)
    cache, prev = KVCache(), torch.zeros(0, dtype=torch.long)
    for k in range(1, K + 1):
        pos = (beta == k).nonzero().flatten()
        logits, _ = model.forward_armd_cached(  # type: ignore[attr-defined]
            z[:, prev], prev, beta[prev][None].float(), pos, beta[pos][None].float(), cache)
        probs = logits[0].double().softmax(-1).numpy()
        z[0, pos] = torch.as_tensor(np.asarray(choose(k - 1, probs, pos), dtype=np.int64))
        prev = pos
    return z[0]


def _run_armd_block(model: Denoiser, n: int, K: int, choose, cached: bool, x: torch.Tensor | None = None
                    ) -> torch.Tensor:
    return _run_armd_cached(model, n, K, choose) if cached else _run_armd(model, n, K, choose, x)


@dataclass
class CompressionStats:
    tokens: int
    chars: int
    bytes_in: int
    bytes_out: int
    model_nll_bits: float  # sum of -log2 p(symbol) under the plan: the ideal code length

    @property
    def bits_per_char(self) -> float:
        return 8 * self.bytes_out / max(self.chars, 1)

    @property
    def overhead(self) -> float:
        """Real payload bits over the model's NLL, minus 1 (the header excluded)."""
        return (8 * self.bytes_out) / max(self.model_nll_bits, 1e-9) - 1


def _model_sha(loaded) -> str:
    from ardm.core.checkpoint import MODEL_FILE, read_checkpoint

    return read_checkpoint(loaded.path, verify=False).files[MODEL_FILE]["sha256"]


def _block_bounds(full: list[int], n: int) -> list[int]:
    return full if n == full[-1] else scale_boundaries(full, n)


def compress(data: bytes, loaded, budget: int = 0, loss_components=None, one_pass: bool = False
             ) -> tuple[bytes, CompressionStats]:
    """Compress UTF-8 bytes with a loaded checkpoint (`ardm.load`). budget 0 = one token per step.
    loss_components (l_t for the checkpoint's sequence length, `ardm plan --save`): follow the
    budget planner's steps instead of equal ones. one_pass (ARMD checkpoints): encode each block
    from one forward pass, the fastest encoder, whose decoder then runs K full passes (default: the
    cached steps on both sides)."""
    import constriction

    model, tok = loaded.model, loaded.tokenizer
    if model.cfg.causal:
        raise ArdmError("compression needs a diffusion (bidirectional) checkpoint")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArdmError(f"input is not UTF-8 text (byte {e.start}); "
                        "this tokenizer cannot encode it") from None
    ids = tok.encode(text) if text else []
    if tok.decode(ids) != text:
        raise ArdmError("the tokenizer does not round-trip this input exactly, "
                        "so it cannot be compressed losslessly")
    L = loaded.config.data.seq_len
    budget = min(budget or L, L)
    armd = model.cfg.attention == "armd"
    if armd and loss_components is not None:
        raise ArdmError("an armd checkpoint codes strided steps (beta = i mod K + 1): --plan is for "
                        "order-agnostic denoisers")
    if one_pass and not armd:
        raise ArdmError("one-pass encoding is for armd checkpoints (their one pass gives every step's "
                        f"conditionals); this one is {model.cfg.attention}")
    if loss_components is not None and len(loss_components) != L:
        raise ArdmError(f"the plan's loss components cover {len(loss_components)} positions, this "
                        f"checkpoint's blocks have {L}: measure them with `ardm plan --save` on it")
    full = step_boundaries(L, budget, loss_components)
    cat = constriction.stream.model.Categorical(perfect=False)
    coder = constriction.stream.stack.AnsCoder()  # one stack for the whole file: no per-block overhead
    nll_bits = 0.0
    starts = list(range(0, len(ids), L))
    with _single_thread():
        for b in reversed(range(len(starts))):  # last block first, so the decoder pops block 0 first
            x = torch.tensor(ids[starts[b]:starts[b] + L])
            steps: list[tuple[np.ndarray, np.ndarray]] = []
            bounds = _block_bounds(full, len(x))
            order = _order(len(x), b)

            def known(k, probs, pos=None, x=x, steps=steps, bounds=bounds, order=order):
                pos = order[bounds[k]:bounds[k + 1]] if pos is None else pos  # armd: its own positions
                sym = x[pos].numpy().astype(np.int32)
                steps.append((sym, probs))
                return sym

            if armd:
                _run_armd_block(model, len(x), budget, known, not one_pass, x.clone())
            else:
                _run_block(model, bounds, b, known)
            for sym, probs in reversed(steps):  # ANS is a stack: last step first
                coder.encode_reverse(sym, cat, probs)
                nll_bits += float(-np.log2(probs[np.arange(len(sym)), sym]).sum())
    words = coder.get_compressed()
    header = (bytes([FORMAT_VERSION]) + bytes.fromhex(_model_sha(loaded))[:SHA_BYTES]
              + _varints([len(data), len(ids), L, budget, int(len(words))]))
    if loss_components is not None:
        plan = bytes([PLANNED]) + _varints(list(np.diff(full).tolist()))
    else:
        plan = bytes([ARMD_CACHED if armd and not one_pass else EQUAL])
    payload = np.asarray(words, dtype="<u4").tobytes()
    out = MAGIC + header + plan + payload
    return out, CompressionStats(len(ids), len(text), len(data), len(payload), nll_bits)


def decompress(blob: bytes, loaded) -> bytes:
    import constriction

    if not blob.startswith(MAGIC):
        raise ArdmError("not an ardm compressed file (bad magic)")
    at = len(MAGIC) + 1 + SHA_BYTES
    if len(blob) < at:
        raise ArdmError("compressed file is truncated (incomplete header)")
    version, sha = blob[len(MAGIC)], blob[len(MAGIC) + 1:at]
    if version != FORMAT_VERSION:
        raise ArdmError(f"compressed file format {version} is not supported (this version reads "
                        f"{FORMAT_VERSION})")
    expected = _model_sha(loaded)
    if sha.hex() != expected[: 2 * SHA_BYTES]:
        raise ArdmError(f"this file was compressed with another checkpoint (model sha256 "
                        f"{sha.hex()[:12]}..., this checkpoint {expected[:12]}...)")
    fields = []
    for _ in range(5):
        v, at = _read_varint(blob, at, "incomplete header")
        fields.append(v)
    n_bytes, n_tokens, L, budget, n_words = fields
    if at >= len(blob):
        raise ArdmError("compressed file is truncated (no plan)")
    armd = loaded.model.cfg.attention == "armd"
    if not 1 <= budget <= L or blob[at] not in (EQUAL, PLANNED, ARMD_CACHED):
        raise ArdmError("compressed file is damaged (header)")
    cached = blob[at] == ARMD_CACHED
    if cached and not armd:
        raise ArdmError("this file was coded with an armd model's cached steps; this checkpoint is "
                        f"{loaded.model.cfg.attention}")
    if blob[at] != PLANNED:
        full, at = step_boundaries(L, budget), at + 1
    else:
        sizes, at = _read_plan(blob, at + 1, budget, L)
        full = [0, *np.cumsum(sizes).tolist()]
    body = blob[at:]
    if len(body) % 4 or len(body) // 4 != n_words:
        raise ArdmError(f"compressed file is truncated ({len(body) // 4} of {n_words} words)")
    cat = constriction.stream.model.Categorical(perfect=False)
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(body, dtype="<u4").astype(np.uint32))
    ids: list[int] = []
    with _single_thread():
        for b in range(math.ceil(n_tokens / L)):
            n = min(L, n_tokens - b * L)
            bounds = _block_bounds(full, n)
            if armd:
                block = _run_armd_block(loaded.model, n, budget,
                                        lambda k, probs, pos: coder.decode(cat, probs), cached)
            else:
                block = _run_block(loaded.model, bounds, b, lambda k, probs: coder.decode(cat, probs))
            ids += block.tolist()
    data = loaded.tokenizer.decode(ids).encode("utf-8")
    if len(data) != n_bytes:
        raise ArdmError("decompressed size differs from the header: wrong checkpoint or damaged file")
    return data

