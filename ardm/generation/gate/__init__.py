"""The Dynamic Overwrite Gate (SPEC §6.8, §7): signals and scorers (`scoring`), the sampler policy
(`sampler`), normalisation statistics from a calibration run (`calibration`), trained gates on
disk (`store`) and gate training (`training`)."""
