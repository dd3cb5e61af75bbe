"""Seq2seq (SPEC §11.7): decoding a prefix denoiser or its AR twin from a source, and `ardm seq2seq eval`."""
