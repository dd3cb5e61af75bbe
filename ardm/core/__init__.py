"""Layer 1, the model: typed configs, tokenizers, the denoiser, noise processes, hyperschedules,
training objectives and self-describing checkpoints (SPEC §1-3). Imports nothing above it."""
