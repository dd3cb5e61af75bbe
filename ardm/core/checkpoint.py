"""Self-describing checkpoints, written atomically (STYLE: "checkpoints that say what they are").

A checkpoint is a folder:
    config.json          run config + format version + sha256 and size of every other file + meta
    model.safetensors    weights (EMA weights when training used EMA)
    tokenizer.json       the tokenizer
    training_state.pt    optional: raw weights, optimizer, EMA, RNG states, step (exact resume)

A training run directory holds `ckpt-<step>/` folders and a `LATEST` file naming the current one.
A save writes a new folder under a temporary name, fsyncs it, renames it into place and only then
replaces `LATEST` (os.replace is atomic), so an interrupted save never damages the previous
checkpoint. `resolve` accepts either a checkpoint folder or a run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ardm.core.config import RunConfig
from ardm.core.encoder_decoder import build_model
from ardm.core.model import TransformerDenoiser
from ardm.core.tokenizer import Tokenizer, tokenizer_from_json
from ardm.errors import ArdmError
from ardm.version import __version__

FORMAT_VERSION = 1
MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE, STATE_FILE = (
    "model.safetensors", "config.json", "tokenizer.json", "training_state.pt")
LATEST = "LATEST"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Build a folder atomically: yields a temporary sibling to fill; on success its files are
    fsynced and it is renamed into place (replacing an existing folder); on any error it is removed
    and `folder` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        mode = _default_file_mode()
        for p in tmp.iterdir():
            os.chmod(p, mode)  # safetensors writes 0600; a checkpoint is shared like any other file
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
    except BaseException:  # a failed write leaves the previous folder and no debris
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():  # replacing a folder: move the old one aside first
        old = folder.with_name(f".{folder.name}.old{os.getpid()}")
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)
    _fsync_dir(folder.parent)


def file_record(path: Path) -> dict[str, Any]:
    """{"sha256", "bytes"} of a file, as config.json and gate.json list them."""
    return {"sha256": _sha256(path), "bytes": path.stat().st_size}


def check_writable(path: Path) -> None:
    """ArdmError naming the folder when `path` cannot be written because its folder is missing
    (atomic writes check it; commands with long work before the write call it first)."""
    if not path.parent.is_dir():
        raise ArdmError(f"cannot write {path}: folder {path.parent} does not exist")


def _default_file_mode() -> int:
    """The mode open() gives a new file under this process's umask (0644 for the usual 022)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (temporary sibling, fsync, rename); a missing folder is an
    ArdmError naming it, not a traceback."""
    check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_checkpoint(folder: Path, cfg: RunConfig, weights: dict[str, torch.Tensor], tokenizer: Tokenizer,
                     meta: dict[str, Any], training_state: dict | None = None,
                     dtype: torch.dtype = torch.float32) -> Path:
    """Write a complete checkpoint folder atomically (temporary sibling, then rename)."""
    with atomic_folder(folder) as tmp:
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in weights.items()}
        # ONE metadata key: safetensors writes metadata in hash-map order, random per process, so two
        # keys made equal weights into files with different bytes (and sha256; issue 16)
        save_file(tensors, tmp / MODEL_FILE, metadata={"format": "pt"})
        (tmp / TOKENIZER_FILE).write_text(tokenizer.to_json(), encoding="utf-8")
        if training_state is not None:
            torch.save(training_state, tmp / STATE_FILE)
        files = {p.name: file_record(p) for p in sorted(tmp.iterdir())}
        doc = {"format_version": FORMAT_VERSION, "ardm_version": __version__, "config": cfg.to_dict(),
               "files": files, "meta": meta}
        (tmp / CONFIG_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return Path(folder)


def save_run_checkpoint(run_dir: Path, step: int, **kwargs) -> Path:
    """Save ckpt-<step> inside a run directory, point LATEST at it, drop older checkpoints."""
    run_dir = Path(run_dir)
    name = f"ckpt-{step:08d}"
    write_checkpoint(run_dir / name, **kwargs)
    atomic_write_text(run_dir / LATEST, name + "\n")
    for old in run_dir.glob("ckpt-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return run_dir / name


def resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise ArdmError(f"checkpoint not found: {p}")
    if (p / CONFIG_FILE).exists():
        return p
    if (p / LATEST).exists():
        target = p / (p / LATEST).read_text().strip()
        if not (target / CONFIG_FILE).exists():
            raise ArdmError(f"run directory {p}: LATEST names {target.name}, which is missing")
        return target
    raise ArdmError(f"{p} is not a checkpoint: it has neither {CONFIG_FILE} nor {LATEST}")


@dataclass
class Checkpoint:
    path: Path
    config: RunConfig
    meta: dict[str, Any]
    files: dict[str, Any]

    def state_path(self) -> Path | None:
        return self.path / STATE_FILE if STATE_FILE in self.files else None


def read_checkpoint(path: str | os.PathLike, verify: bool = True) -> Checkpoint:
    """Read and validate config.json; with `verify`, check every file's size and sha256."""
    folder = resolve(path)
    try:
        doc = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArdmError(f"checkpoint {folder}: {CONFIG_FILE} is corrupted ({e})") from None
    if not isinstance(doc, dict) or "format_version" not in doc:
        raise ArdmError(f"checkpoint {folder}: {CONFIG_FILE} is not an ardm checkpoint config")
    if doc["format_version"] != FORMAT_VERSION:
        raise ArdmError(f"checkpoint {folder} has format version {doc['format_version']}, this ardm "
                        f"({__version__}) reads version {FORMAT_VERSION}")
    files = doc.get("files", {})
    for name in (MODEL_FILE, TOKENIZER_FILE):
        if name not in files:
            raise ArdmError(f"checkpoint {folder}: {CONFIG_FILE} lists no {name}")
    for name, info in files.items():
        f = folder / name
        if not f.exists():
            raise ArdmError(f"checkpoint {folder} is missing {name}")
        if f.stat().st_size != info["bytes"]:
            raise ArdmError(f"checkpoint {folder}: {name} is truncated or altered "
                            f"({f.stat().st_size} bytes, expected {info['bytes']})")
        if verify and _sha256(f) != info["sha256"]:
            raise ArdmError(f"checkpoint {folder}: {name} is corrupted (sha256 mismatch)")
    cfg = RunConfig.from_dict(doc["config"])
    return Checkpoint(folder, cfg, doc.get("meta", {}), files)


def load_tokenizer(ckpt: Checkpoint) -> Tokenizer:
    tok = tokenizer_from_json((ckpt.path / TOKENIZER_FILE).read_text(encoding="utf-8"))
    if tok.vocab_size != ckpt.config.model.vocab_size:
        raise ArdmError(f"checkpoint {ckpt.path}: tokenizer has {tok.vocab_size} symbols but the model "
                        f"was built for {ckpt.config.model.vocab_size}")
    return tok


def read_weights(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, as float32."""
    try:
        weights = load_file(ckpt.path / MODEL_FILE)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ArdmError(f"checkpoint {ckpt.path}: cannot read {MODEL_FILE} ({e})") from None
    return {k: v.float() for k, v in weights.items()}


def load_model(ckpt: Checkpoint, device: str = "cpu") -> TransformerDenoiser:
    weights = read_weights(ckpt)
    model = build_model(ckpt.config.model)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "shape or key mismatch"
        raise ArdmError(f"checkpoint {ckpt.path}: weights do not match its config ({first})") from None
    return model.to(device).eval()


@dataclass
class Loaded:
    model: TransformerDenoiser
    tokenizer: Tokenizer
    config: RunConfig
    meta: dict[str, Any]
    path: Path


def load(path: str | os.PathLike, device: str = "cpu") -> Loaded:
    """`ardm.load(DIR)`: model (eval mode) + tokenizer + config from a checkpoint or run directory."""
    ckpt = read_checkpoint(path)
    return Loaded(load_model(ckpt, device), load_tokenizer(ckpt), ckpt.config, ckpt.meta, ckpt.path)
