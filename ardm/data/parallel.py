"""Parallel corpora for seq2seq (SPEC §8.1, §11.7): aligned source/target pairs, a shared BPE, and
fixed-length records with the source as a clean prefix.

Sources (`data.path` with `data.source_len > 0`; `data.pair = "SRC,TGT"`):
- a folder of aligned files `<stem>.<SRC>` / `<stem>.<TGT>` (`.gz` read transparently); the split of
  a file is the last dot-separated part of its stem: `train.en.gz` (Multi30k), `commongen.dev.src_alpha.txt`
  (CommonGen). The sets' own splits are used: train; validation = val / valid / dev; test = test or
  test_* (e.g. Multi30k's test_2016_flickr);
- a `.jsonl` file whose records hold the two fields SRC and TGT: the last `data.val_fraction` of the
  records is validation (no test split).
Consecutive pairs with the same source are one item with several references (CommonGen's dev/test).

Record layout (the prefix denoiser and its AR twin read the same one), L = source_len + 1 + target_len:

    [PAD ... PAD  source tokens][SEP][target tokens EOS EOS ... EOS]
     <------ source_len ------>       <-------- target_len -------->

The source is left-padded so every target starts at position P = source_len + 1 (the loop's prompt);
the P prefix positions are clean (level 0, no loss). A source or target longer than its slot is
truncated and counted, never silently.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ardm.core.checkpoint import atomic_folder, atomic_write_text
from ardm.core.config import DataConfig
from ardm.core.tokenizer import BPETokenizer, Tokenizer
from ardm.data.corpus import Corpus, file_sha256
from ardm.errors import ArdmError

PAD, SEP, EOS, UNK = "<pad>", "<sep>", "<eos>", "<unk>"
SPECIALS = (PAD, SEP, EOS, UNK)
VAL_SPLITS = ("val", "valid", "validation", "dev")


@dataclass
class Item:
    """One source with all its references (one for Multi30k, several for CommonGen dev/test)."""

    source: str
    references: list[str]
    line: int  # 1-based line of its first pair in the files


@dataclass
class Truncation:
    """How many sources / targets did not fit their slot (reported by training, translate and eval)."""

    sources: int = 0
    targets: int = 0
    lines: list[int] = field(default_factory=list)  # 0-based indices of truncated sources (first 20)

    def note_source(self, index: int) -> None:
        self.sources += 1
        if len(self.lines) < 20:
            self.lines.append(index)

    def to_dict(self) -> dict:
        return {"sources": self.sources, "targets": self.targets, "source_indices": self.lines}


def _read_lines(path: Path, digest=None) -> list[str]:
    raw = path.read_bytes()
    if digest is not None:
        digest.update(raw)
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise ArdmError(f"{path} is not valid gzip ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ArdmError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def check_lines(lines: list[str], path: str | Path) -> list[str]:
    """Lines without their CR; ArdmError naming the first empty line."""
    lines = [ln.rstrip("\r") for ln in lines]
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            raise ArdmError(f"{path}:{i}: empty line (every line must hold a sentence)")
    return lines


def aligned_pairs(source_file: Path, target_file: Path, digest=None) -> list[tuple[str, str]]:
    """Pairs from two aligned files; ArdmError naming the line where their lengths diverge."""
    src, tgt = _read_lines(source_file, digest), _read_lines(target_file, digest)
    if len(src) != len(tgt):
        short, long_ = (source_file, target_file) if len(src) < len(tgt) else (target_file, source_file)
        raise ArdmError(f"{source_file} has {len(src)} lines and {target_file} {len(tgt)}: they diverge at "
                        f"line {min(len(src), len(tgt)) + 1} ({long_} has it, {short} does not)")
    return list(zip(check_lines(src, source_file), check_lines(tgt, target_file)))


def pair_names(pair: str, what: str = "data.pair") -> tuple[str, str]:
    """("SRC", "TGT") of a "SRC,TGT" pair; `what` names the setting in the error."""
    names = [p.strip() for p in pair.split(",")]
    if len(names) != 2 or not all(names):
        raise ArdmError(f"{what} must be 'SRC,TGT' (file suffixes or .jsonl fields), got {pair!r}")
    return names[0], names[1]


def split_files(folder: Path, src: str, tgt: str) -> dict[str, tuple[Path, Path]]:
    """split name -> (source file, target file) of a folder of aligned files."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name.endswith("." + src):
            stem = p.name[: -len(src) - 1]
            other = folder / f"{stem}.{tgt}"
            if other.is_file():
                out[stem.split(".")[-1]] = (p, other)
    if not out:
        raise ArdmError(f"{folder} holds no aligned files *.{src} / *.{tgt} (data.pair={src},{tgt})")
    return out


def find_split(splits: dict, name: str, where: str):
    """The split called `name`: 'train', 'val' (val/valid/validation/dev), 'test' (test or test_*)."""
    if name in splits:
        return splits[name]
    family = VAL_SPLITS if name in VAL_SPLITS else ("test",) if name == "test" else ()
    hits = [k for k in splits if k in family or (name == "test" and k.startswith("test"))]
    if len(hits) != 1:
        why = "several match" if hits else "none matches"
        raise ArdmError(f"{where}: no unique split {name!r} ({why}; splits: {', '.join(sorted(splits))})")
    return splits[hits[0]]


def _jsonl_pairs(path: Path, src: str, tgt: str, digest) -> list[tuple[str, str]]:
    out = []
    for i, line in enumerate(_read_lines(path, digest), 1):
        if not line.strip():
            raise ArdmError(f"{path}:{i}: empty line (every line must hold a record)")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ArdmError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(rec, dict) or src not in rec or tgt not in rec:
            raise ArdmError(f"{path}:{i}: record needs the fields {src!r} and {tgt!r} (data.pair)")
        s, t = str(rec[src]).strip(), str(rec[tgt]).strip()
        if not s or not t:
            raise ArdmError(f"{path}:{i}: empty {'source' if not s else 'target'} field")
        out.append((s, t))
    return out


def read_split(cfg: DataConfig, split: str, digest=None) -> list[tuple[str, str]]:
    """The (source, target) pairs of one split of the parallel corpus `cfg.path`."""
    path, (src, tgt) = Path(cfg.path), pair_names(cfg.pair)
    if not path.exists():
        raise ArdmError(f"parallel corpus not found: {path}")
    if path.is_dir():
        source_file, target_file = find_split(split_files(path, src, tgt), split, str(path))
        return aligned_pairs(source_file, target_file, digest)
    pairs = _jsonl_pairs(path, src, tgt, digest)
    cut = max(1, min(len(pairs) - 1, round(len(pairs) * (1.0 - cfg.val_fraction))))
    if split == "train":
        return pairs[:cut]
    if split in VAL_SPLITS:
        return pairs[cut:]
    raise ArdmError(f"{path}: a .jsonl corpus has the splits train and val (its last "
                    f"{cfg.val_fraction:.0%}), not {split!r}")


def group_references(pairs: list[tuple[str, str]]) -> list[Item]:
    """Consecutive pairs with the same source -> one item with all their targets as references."""
    items: list[Item] = []
    for i, (s, t) in enumerate(pairs, 1):
        if items and items[-1].source == s:
            items[-1].references.append(t)
        else:
            items.append(Item(s, [t], i))
    return items


def train_pair_tokenizer(texts: list[str], vocab_size: int, extra_chars: str = "") -> BPETokenizer:
    """A BPE shared by both sides, its merges learnt from `texts`: Metaspace words, an alphabet of
    their characters plus `extra_chars` (anything else is refused by `encode_checked`), and the
    specials PAD, SEP, EOS, UNK."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, special_tokens=list(SPECIALS),
                                  initial_alphabet=sorted(set(extra_chars) - {"\n", "\r"}))
    tok.train_from_iterator((texts[i:i + 1000] for i in range(0, len(texts), 1000)), trainer=trainer)
    return BPETokenizer(tok)


def special_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """PAD, SEP, EOS, UNK ids; ArdmError if the tokenizer is not a seq2seq one."""
    tok = getattr(tokenizer, "tok", None)
    ids = {s: tok.token_to_id(s) if tok is not None else None for s in SPECIALS}
    if any(v is None for v in ids.values()):
        raise ArdmError("this checkpoint's tokenizer has no seq2seq special tokens (train it with a "
                        "seq2seq recipe, e.g. multi30k-en-de)")
    return {k: int(v) for k, v in ids.items() if v is not None}


def encode_checked(tokenizer: Tokenizer, lines: list[str], what: str = "line") -> list[list[int]]:
    """Token ids of each line; ArdmError naming the first line with characters outside the tokenizer."""
    tok = getattr(tokenizer, "tok", None)
    if tok is None:
        raise ArdmError("seq2seq needs a BPE tokenizer")
    unk = special_ids(tokenizer)[UNK]
    out = []
    for i, enc in enumerate(tok.encode_batch(lines, add_special_tokens=False)):
        if unk in enc.ids:
            bad = dict.fromkeys(lines[i][a:b] for j, (a, b) in zip(enc.ids, enc.offsets) if j == unk)
            raise ArdmError(f"{what} {i + 1}: characters outside the tokenizer: {''.join(bad)!r}")
        out.append(enc.ids)
    return out


def source_prompts(tokenizer: Tokenizer, sources: list[str], source_len: int,
                   truncation: Truncation | None = None) -> torch.Tensor:
    """[N, source_len + 1] prompts: left-padded source tokens, then SEP. A longer source keeps its first
    source_len tokens and is counted in `truncation`."""
    sp = special_ids(tokenizer)
    rows = np.full((len(sources), source_len + 1), sp[PAD], dtype=np.int64)
    rows[:, -1] = sp[SEP]
    for i, ids in enumerate(encode_checked(tokenizer, sources, "source line")):
        if len(ids) > source_len:
            ids = ids[:source_len]
            if truncation is not None:
                truncation.note_source(i)
        rows[i, source_len - len(ids): source_len] = ids
    return torch.from_numpy(rows)


def pair_records(tokenizer: Tokenizer, pairs: list[tuple[str, str]], cfg: DataConfig,
                 truncation: Truncation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """([N * L] ids, [N * L] clean mask) of the record layout above, one record per pair."""
    truncation = truncation if truncation is not None else Truncation()
    prompts = source_prompts(tokenizer, [s for s, _ in pairs], cfg.source_len, truncation)
    eos = special_ids(tokenizer)[EOS]
    targets = np.full((len(pairs), cfg.target_len), eos, dtype=np.int64)
    for i, ids in enumerate(encode_checked(tokenizer, [t for _, t in pairs], "target line")):
        if len(ids) >= cfg.target_len:  # no room for EOS
            truncation.targets += 1
            ids = ids[: cfg.target_len]
        targets[i, : len(ids)] = ids
    records = torch.cat([prompts, torch.from_numpy(targets)], 1)
    clean = torch.zeros_like(records, dtype=torch.bool)
    clean[:, : cfg.prefix_len] = True
    return records.reshape(-1), clean.reshape(-1)


def load_parallel(cfg: DataConfig) -> Corpus:
    """A Corpus whose text is both sides of each split (the tokenizer's training text) and whose
    `train_pairs` / `val_pairs` are the pairs (ardm.training.run builds records from them)."""
    digest = hashlib.sha256()
    train, val = read_split(cfg, "train", digest), read_split(cfg, "val", digest)
    text = ["\n".join(s + "\n" + t for s, t in part) for part in (train, val)]
    return Corpus(text[0], text[1], cfg.path, digest.hexdigest(), train_pairs=train, val_pairs=val)


def write_lines(path: Path, lines: list[str]) -> None:
    """One line per string (gzip with a fixed mtime for `.gz` names: equal lines, equal bytes)."""
    data = "".join(ln + "\n" for ln in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def write_parallel_folder(out: str | Path, splits: dict[str, tuple[Path, Path]], train: list[tuple[str, str]],
                          manifest_name: str, manifest: dict) -> dict:
    """Atomically write `out`: the train split's two files (the names of `splits["train"]`) with the
    pairs `train`, every other split's files copied, and `manifest` (plus the train targets' sha256)
    as `out/<manifest_name>`. Returns the manifest."""
    src_file, tgt_file = splits["train"]
    with atomic_folder(out) as tmp:
        write_lines(tmp / src_file.name, [s for s, _ in train])
        write_lines(tmp / tgt_file.name, [t for _, t in train])
        for name, files in splits.items():
            if name != "train":
                for f in files:
                    shutil.copyfile(f, tmp / f.name)
        manifest["train_sha256"] = file_sha256(tmp / tgt_file.name)
        atomic_write_text(tmp / manifest_name, json.dumps(manifest, indent=2) + "\n")
    return manifest
