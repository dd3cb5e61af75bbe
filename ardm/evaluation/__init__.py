"""Layer 4, evaluation: likelihoods, sample metrics, the sampler comparison protocol (`compare`),
its reports, tables and plots, the gate ablations and the demo (SPEC §8)."""
