"""Samplers: small policies on the one generation loop (`ardm.generation.loop`; SPEC §6).

`base` holds the contract (StepState in, WriteSet out); each other module is one family of policies.
The registry of names, `SAMPLERS`, is `ardm.generation.registry` (the gate's policy lives in
`ardm.generation.gate.sampler`, which imports `base`, so this package imports nothing itself).
"""
