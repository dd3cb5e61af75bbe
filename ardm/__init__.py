"""ardm: autoregressive diffusion language models that can revise their own tokens."""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a checkpoint (or a run directory's latest one): returns .model, .tokenizer, .config."""
    from .checkpoint import load as _load

    return _load(path, device)


__all__ = ["__version__", "load"]
