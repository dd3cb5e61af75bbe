"""Layer 5, training: recipes (named configs) and the training loop with exact resume."""
