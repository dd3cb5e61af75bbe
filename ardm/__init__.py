"""ardm: autoregressive diffusion language models that can revise their own tokens.

The package is layered (README "Layout"): errors/version < core < data < generation < evaluation
< training < tasks < cli; a module imports only from its own layer or below (tests/test_layout.py).
"""

from ardm.version import __version__


def load(path, device: str = "cpu"):
    """Load a checkpoint (or a run directory's latest one): returns .model, .tokenizer, .config."""
    from ardm.core.checkpoint import load as _load

    return _load(path, device)


__all__ = ["__version__", "load"]
