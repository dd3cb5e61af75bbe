"""Layer 2, corpora: text files, folders, `.jsonl`, `hf:` and synthetic Sudoku sources behind one
registry (`CORPUS_SOURCES`), the train/validation split, and fixed-length training windows."""
