"""ardm: autoregressive diffusion language models that can revise their own tokens.

The package is layered (README "Layout"): errors/version < core < data < generation < evaluation
< training < tasks < cli; a module imports only from its own layer or below (tests/test_layout.py).
"""

from ardm.version import __version__


def load(path, device: str = "cpu"):
    """Load a checkpoint (or a run directory's latest one): .model, .tokenizer, .config, .meta, .path,
    and .generate(prompt, sampler="gate", steps=64) -> text and stats (ardm.generation.pipeline)."""
    from ardm.generation.pipeline import load as _load

    return _load(path, device)


__all__ = ["__version__", "load"]
