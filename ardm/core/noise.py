"""Forward noise processes and their per-token loss weights (SPEC §2).

Every process is independent per position given the clean sequence x and acts at per-token noise
levels t [B, L] (t = 0: clean "settled" context, never corrupted and never scored; t = 1: fully
noised). The signal schedule is linear, alpha(t) = 1 - t, so the MDLM weight -alpha'/(1-alpha) is 1/t.

The training loss of a process is sum_i loss_i / (B L). For absorbing, uniform and epsilon-hybrid,
loss_i = w_i * CE_i with CE_i = -log q_theta(x_i | z) and w_i from `token_weights`: only the
absorbing weights make an ELBO; the epsilon-hybrid weights are HDLM's (a denoising objective), and
uniform uses the x0 cross-entropy surrogate (SPEC §2.2). gamma-hybrid uses SEDD score entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ardm.core.registry import Registry

if TYPE_CHECKING:
    from ardm.core.config import NoiseConfig

# 1/(1 - t) weights of the epsilon-hybrid visible terms explode as t -> 1; HDLM draws t <= 1 - 1e-4.
# Added: we floor 1 - t at this value so a rare nearly-fully-masked sequence cannot dominate a batch.
MIN_VISIBLE_FRACTION = 1e-2


@dataclass
class Corruption:
    z: torch.Tensor  # [B, L] noisy tokens (MASK = vocab_size)
    masked: torch.Tensor  # [B, L] bool: absorbed into MASK
    replaced: torch.Tensor  # [B, L] bool: visible and chosen for uniform resampling (may redraw x_i)


def token_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log q(target) per position, in fp32. logits [B, L, V], target [B, L] -> [B, L]"""
    return torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")


class NoiseProcess:
    name = "base"

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.mask_id = vocab_size

    @classmethod
    def from_config(cls, cfg: NoiseConfig, vocab_size: int) -> NoiseProcess:
        """The process a `noise` config section describes; processes with parameters override this."""
        return cls(vocab_size)

    def corrupt(self, x: torch.Tensor, t: torch.Tensor,
                generator: torch.Generator | None = None) -> Corruption:
        raise NotImplementedError

    def marginal(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q_t(z_i | x_i) as probabilities over V + 1 symbols (MASK last). [..., V + 1]"""
        raise NotImplementedError

    def token_weights(self, c: Corruption, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def token_loss(self, logits: torch.Tensor, x: torch.Tensor, c: Corruption, t: torch.Tensor,
                   nll: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token training loss [B, L]; the default is w_i * -log q_theta(x_i | z).

        nll: token_nll(logits, x) if the caller already has it (the objective logs it too).
        """
        return self.token_weights(c, t) * (token_nll(logits, x) if nll is None else nll)

    # helpers shared by the processes
    def _random_tokens(self, shape, generator, device) -> torch.Tensor:
        gen_device = generator.device if generator is not None else device
        return torch.randint(0, self.vocab_size, shape, generator=generator, device=gen_device).to(device)

    def _onehot(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(x, self.vocab_size + 1).float()


def _rand(shape, generator, device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


NOISE_PROCESSES: Registry[type[NoiseProcess]] = Registry("noise.kind")


@NOISE_PROCESSES.register("absorbing")
class AbsorbingNoise(NoiseProcess):
    """q_t(z_i | x_i) = (1 - t)[z_i = x_i] + t [z_i = MASK]   (MDLM, SPEC §2.1)."""

    name = "absorbing"

    @classmethod
    def from_config(cls, cfg: NoiseConfig, vocab_size: int) -> NoiseProcess:
        return (CountNormalizedAbsorbing if cfg.mask_weight == "count" else AbsorbingNoise)(vocab_size)

    def corrupt(self, x, t, generator=None):
        masked = (_rand(x.shape, generator, x.device) < t) & (t > 0)
        z = torch.where(masked, torch.full_like(x, self.mask_id), x)
        return Corruption(z, masked, torch.zeros_like(masked))

    def marginal(self, x, t):
        t = t[..., None]
        return (1 - t) * self._onehot(x) + t * self._onehot(torch.full_like(x, self.mask_id))

    def token_weights(self, c, t):
        # NELBO weight w(t) = 1/t on masked positions; visible tokens are copied (SUBS), weight 0.
        return torch.where(c.masked, 1.0 / t.clamp_min(1e-12), torch.zeros_like(t))


class CountNormalizedAbsorbing(AbsorbingNoise):
    """Absorbing noise whose masked positions are weighted L_active / m per row instead of 1/t
    (`noise.mask_weight=count`; training only, evaluation keeps the exact NELBO).

    MDLM's per-sequence estimate (1/t) sum_{i masked} CE_i carries the Binomial(L, t) noise of the
    masked count times 1/t (at t = 0.02, L = 256 the count alone has a 44% relative spread). With
    m = #masked, (L/m) sum_{i masked} CE_i estimates the same integral without it: it is the
    order-agnostic weight D/m (SPEC §4.1) on i.i.d. masking. With t ~ U[0, 1] the two objectives
    differ by the constant L/(L + 1) (same gradient direction; m = 0 contributes 0)."""

    def token_weights(self, c, t):
        active = (t > 0).sum(1, keepdim=True).float()  # positions that are not settled context
        count = c.masked.sum(1, keepdim=True).clamp_min(1).float()
        return torch.where(c.masked, active / count, torch.zeros_like(t))


@NOISE_PROCESSES.register("uniform")
class UniformNoise(NoiseProcess):
    """q_t(z_i | x_i) = (1 - t)[z_i = x_i] + t / V   (SPEC §2.2). Loss: x0 cross-entropy surrogate."""

    name = "uniform"

    def corrupt(self, x, t, generator=None):
        replaced = (_rand(x.shape, generator, x.device) < t) & (t > 0)
        z = torch.where(replaced, self._random_tokens(x.shape, generator, x.device), x)
        return Corruption(z, torch.zeros_like(replaced), replaced)

    def marginal(self, x, t):
        t = t[..., None]
        uniform = torch.zeros(self.vocab_size + 1, device=x.device)
        uniform[: self.vocab_size] = 1.0 / self.vocab_size
        return (1 - t) * self._onehot(x) + t * uniform

    def token_weights(self, c, t):
        # surrogate (not a bound): every non-settled position is scored with weight 1
        return (t > 0).float()


@NOISE_PROCESSES.register("epsilon_hybrid")
class EpsilonHybridNoise(NoiseProcess):
    """HDLM epsilon-hybrid (SPEC §2.3): mask with prob t, then resample each visible token
    uniformly (possibly to itself) with prob epsilon.

    q_t(MASK | x) = t ;  q_t(y | x) = (1 - t)[(1 - eps)[y = x] + eps / V].
    """

    name = "epsilon_hybrid"

    def __init__(self, vocab_size: int, epsilon: float, lam: float = 1.0):
        super().__init__(vocab_size)
        self.epsilon = epsilon
        self.lam = lam

    @classmethod
    def from_config(cls, cfg: NoiseConfig, vocab_size: int) -> NoiseProcess:
        return cls(vocab_size, cfg.epsilon, cfg.hybrid_lambda)

    def corrupt(self, x, t, generator=None):
        active = t > 0
        masked = (_rand(x.shape, generator, x.device) < t) & active
        replaced = (_rand(x.shape, generator, x.device) < self.epsilon) & active & ~masked
        noisy = torch.where(replaced, self._random_tokens(x.shape, generator, x.device), x)
        z = torch.where(masked, torch.full_like(x, self.mask_id), noisy)
        return Corruption(z, masked, replaced)

    def marginal(self, x, t):
        t = t[..., None]
        uniform = torch.zeros(self.vocab_size + 1, device=x.device)
        uniform[: self.vocab_size] = 1.0 / self.vocab_size
        visible = (1 - self.epsilon) * self._onehot(x) + self.epsilon * uniform
        q = t * self._onehot(torch.full_like(x, self.mask_id)) + (1 - t) * visible
        # t = 0 exactly is settled context, never corrupted (as in `corrupt`), although the
        # epsilon corruption does not vanish as t -> 0 (SPEC §2.3)
        return torch.where(t > 0, q, self._onehot(x))

    def token_weights(self, c, t):
        # SPEC §2.3 (ServiceNow/hdlm epsilon_hybrid/losses.py, aligned variant):
        #   masked 1/t ; visible replaced lam (1-eps)/(1-t) ; visible kept lam eps/(1-t)
        # The two visible classes then carry equal mass eps(1-eps): "fix" vs "keep" examples balance.
        inv_visible = 1.0 / (1.0 - t).clamp_min(MIN_VISIBLE_FRACTION)
        w_masked = 1.0 / t.clamp_min(1e-12)
        w_replaced = self.lam * (1.0 - self.epsilon) * inv_visible
        w_kept = self.lam * self.epsilon * inv_visible
        w = torch.where(c.masked, w_masked, torch.where(c.replaced, w_replaced, w_kept))
        return torch.where(t > 0, w, torch.zeros_like(w))


@NOISE_PROCESSES.register("gamma_hybrid")
class GammaHybridNoise(NoiseProcess):
    """HDLM gamma-hybrid (SPEC §2.4): a CTMC with rate (1 - gamma) Q_absorb + gamma Q_unif and
    log-linear total noise sigma(t) = -log(1 - (1 - e) t). Absorption and uniform resampling are
    independent Poisson clocks, so with c = exp(-(1-gamma) sigma), a = exp(-gamma sigma):

        q_t(MASK | x) = 1 - c ;   q_t(y | x) = c [a [y = x] + (1 - a)/V]

    Loss: SEDD's denoising score entropy with this rate matrix,
        sigma'(t) sum_i sum_{y != z_i} Q(y -> z_i) [s(y) - r_y log s(y) + r_y (log r_y - 1)],
    r_y = q_t(y | x_i)/q_t(z_i | x_i). The denoiser stays x0-parameterised: its softmax p(x_i | z)
    gives the concrete score exactly, s(y) = sum_x p(x | z) q_t(y | x)/q_t(z_i | x) (Bayes with
    independent per-token noise), so a model that knows x gets zero loss. The bracket is computed as
    r phi(s/r), phi(rho) = rho - 1 - log rho >= 0, which is stable when s and r are large.
    """

    name = "gamma_hybrid"

    @classmethod
    def from_config(cls, cfg: NoiseConfig, vocab_size: int) -> NoiseProcess:
        return cls(vocab_size, cfg.gamma)

    def __init__(self, vocab_size: int, gamma: float, eps: float = 5e-3):
        super().__init__(vocab_size)
        self.gamma, self.eps = gamma, eps  # eps: log-linear schedule floor (SPEC §2.1, SEDD/HDLM)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1 - self.eps) * t)

    def dsigma(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.eps) / (1 - (1 - self.eps) * t)

    def _clocks(self, t: torch.Tensor):
        sig = self.sigma(t.float())
        keep = torch.exp(-(1 - self.gamma) * sig)  # c: not absorbed
        stay = torch.exp(-self.gamma * sig)  # a: not resampled
        return keep, stay, (1 - stay) / self.vocab_size  # c, a, u

    def corrupt(self, x, t, generator=None):
        keep, stay, _ = self._clocks(t)
        active = t > 0
        masked = (_rand(x.shape, generator, x.device) >= keep) & active
        replaced = (_rand(x.shape, generator, x.device) >= stay) & active & ~masked
        noisy = torch.where(replaced, self._random_tokens(x.shape, generator, x.device), x)
        return Corruption(torch.where(masked, torch.full_like(x, self.mask_id), noisy), masked, replaced)

    def marginal(self, x, t):
        keep, stay, u = (v[..., None] for v in self._clocks(t))
        onehot = self._onehot(x)
        uniform = torch.zeros(self.vocab_size + 1, device=x.device)
        uniform[: self.vocab_size] = 1.0
        mask = self._onehot(torch.full_like(x, self.mask_id))
        return (1 - keep) * mask + keep * (stay * onehot + u * uniform)

    def token_weights(self, c, t):
        raise NotImplementedError("gamma-hybrid trains with score entropy, not weighted cross-entropy")

    def token_loss(self, logits, x, c, t, nll=None):
        # (score entropy does not use `nll`.) Settled positions (t = 0) have u = 0 and log 0 = -inf;
        # compute on a clamped level and mask afterwards, so their NaNs cannot leak into the
        # gradient through torch.where
        t_safe = t.float().clamp_min(1e-4)
        _, stay, u = (v[..., None] for v in self._clocks(t_safe))  # [B, L, 1]
        p = logits.float().softmax(-1)  # model's x0 posterior [B, L, V]
        V = self.vocab_size
        true = torch.nn.functional.one_hot(x, V).float()
        # z_i = MASK: y over all tokens, Q(y -> MASK) = 1 - gamma. The keep factor c cancels in s/r.
        log_r_m = torch.log(stay * true + u)
        log_s_m = torch.log(stay * p + u)
        loss_m = (1 - self.gamma) * _bregman(log_s_m, log_r_m).sum(-1)
        # z_i = token v: y over tokens b != v, Q(b -> v) = gamma / V.
        z = c.z.clamp(max=V - 1)
        cur = torch.nn.functional.one_hot(z, V).float()
        p_cur = (p * cur).sum(-1, keepdim=True)
        x_is_cur = (true * cur).sum(-1, keepdim=True)
        log_r_v = torch.log(stay * true + u) - torch.log(stay * x_is_cur + u)
        s_v = p_cur * u / (stay + u) + p * (stay + u) / u + (1 - p_cur - p)
        loss_v = (self.gamma / V) * (_bregman(torch.log(s_v.clamp_min(1e-30)), log_r_v) * (1 - cur)).sum(-1)
        loss = torch.where(c.masked, loss_m, loss_v) * self.dsigma(t_safe)
        return torch.where(t > 0, loss, torch.zeros_like(loss))


@NOISE_PROCESSES.register("order_agnostic")
class OrderAgnosticNoise(NoiseProcess):
    """Order-agnostic ARDM (Hoogeboom et al.; SPEC §4.1) as exact-count absorbing noise.

    A sequence with level t gets exactly m = ceil(t D) of its D positions masked (a uniformly random
    subset, i.e. the not-yet-generated part of a random order with D - m variables known) and
    weight D/m on each masked position: with t ~ U(0, 1], m ~ U{1..D}, and the per-sequence loss
    (D/m) sum_{masked} -log p(x_k | x_known) is the unbiased one-draw estimate of the any-order
    NLL bound (ardm's loss divides by D per token). Settled positions (t = 0) stay clean; levels
    are read per sequence from the first active position (flat training schedules).
    """

    name = "order_agnostic"

    def corrupt(self, x, t, generator=None):
        B, D = x.shape
        level = t.max(1).values  # per-sequence level (flat schedules: the same at every position)
        m = (level * D).ceil().clamp(1, D).long()
        rank = _rand(x.shape, generator, x.device).argsort(1).argsort(1)
        masked = (rank < m[:, None]) & (t > 0)
        z = torch.where(masked, torch.full_like(x, self.mask_id), x)
        return Corruption(z, masked, torch.zeros_like(masked))

    def marginal(self, x, t):
        # exactly ceil(tD) of D positions are masked, so each position is masked w.p. ceil(tD)/D
        D = x.shape[-1]
        p = ((t * D).ceil().clamp(1, D) / D)[..., None]
        return (1 - p) * self._onehot(x) + p * self._onehot(torch.full_like(x, self.mask_id))

    def token_weights(self, c, t):
        count = c.masked.sum(1, keepdim=True).clamp_min(1).float()
        return torch.where(c.masked, c.masked.shape[1] / count, torch.zeros_like(t))


def _bregman(log_s: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    """s - r log s + r (log r - 1) = r phi(s/r), phi(rho) = rho - 1 - log rho, in log space."""
    log_rho = log_s - log_r
    return torch.exp(log_r) * (torch.expm1(log_rho) - log_rho)


def make_noise(cfg: NoiseConfig, vocab_size: int) -> NoiseProcess:
    """The noise process named by cfg.kind (NOISE_PROCESSES), built from its config section."""
    return NOISE_PROCESSES[cfg.kind].from_config(cfg, vocab_size)
