"""Layer 6, tasks built on the layers below: Sudoku solving and benchmarks, lossless compression."""
