"""Layer 3, generation: the one loop (`loop.generate`), the sampler policies (`samplers/`), the
Dynamic Overwrite Gate with its training and storage (`gate/`), the budget planner and MBR."""
