"""What is this file? Model files identified by their content, never by their extension.

- ExecuTorch program: a flatbuffer with identifier ``ET12`` at byte 4 (``.pte``);
- bundled program: identifier ``BP08`` (``.bpte``, a program with test inputs and outputs);
- TensorFlow Lite model: a flatbuffer with identifier ``TFL3`` at byte 4 (``.tflite``, the app's
  TFLite path);
- zip archives (torch's formats): ``bytecode.pkl`` means a lite-interpreter file (``.ptl``),
  ``code/`` + ``constants.pkl`` a TorchScript file, ``data.pkl`` alone a ``torch.save``
  checkpoint;
- a raw pickle (legacy ``torch.save`` before zip);
- and what model files turn out to be when something went wrong: empty, a Git LFS pointer, an
  HTML page, JSON or other text, a truncated or corrupt zip.

No code in the file runs: only bytes and the zip directory are read.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from osdml.errors import InputError

PTE, BPTE, PTL, TORCHSCRIPT, CHECKPOINT, LEGACY_PICKLE = (
    "pte", "bpte", "ptl", "torchscript", "checkpoint", "legacy-pickle")
TFLITE = "tflite"
DESCRIPTIONS = {
    PTE: "an ExecuTorch program (.pte)",
    BPTE: "an ExecuTorch bundled program (.bpte: a program with test inputs and outputs)",
    PTL: "a PyTorch Mobile lite-interpreter file (.ptl, TorchScript inside)",
    TORCHSCRIPT: "a TorchScript archive (torch.jit.save)",
    CHECKPOINT: "a torch.save checkpoint",
    LEGACY_PICKLE: "a legacy (pre-zip) torch.save pickle",
    TFLITE: "a TensorFlow Lite model (.tflite, the app's TFLite path)",
}


@dataclass(frozen=True)
class Sniffed:
    """The kind of a model file (one of the constants above) and its size in bytes."""

    path: Path
    kind: str
    size: int

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]


def sniff(path: str | Path) -> Sniffed:
    """Identify a model file by its content.

    Raises
    ------
    InputError
        If the file is missing, a folder, empty, a Git LFS pointer, an HTML page, JSON or
        text, a truncated or corrupt archive, or anything else that is not a model file; one
        line saying what it is.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"cannot read model: {path} does not exist")
    if path.is_dir():
        raise InputError(f"cannot read model: {path} is a folder (use --recursive to convert "
                         "the model files in it)")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise InputError(f"cannot read model: {path} is empty (0 bytes)")
    if head[4:8] == b"ET12":
        return Sniffed(path, PTE, size)
    if head[4:8] == b"BP08":
        return Sniffed(path, BPTE, size)
    if head[4:8] == b"TFL3":
        return Sniffed(path, TFLITE, size)
    if head.startswith(b"PK\x03\x04"):
        return Sniffed(path, _zip_kind(path), size)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return Sniffed(path, LEGACY_PICKLE, size)
    raise InputError(f"cannot read model: {path} {_what_else(head, size)}")


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = {n.split("/", 1)[1] if "/" in n else n for n in z.namelist()}
            bad = z.testzip() if len(names) < 5000 else None
    except (zipfile.BadZipFile, OSError, EOFError):
        raise InputError(f"cannot read model: {path} is a truncated or corrupt archive (an "
                         "interrupted download or copy?)") from None
    if bad is not None:
        raise InputError(f"cannot read model: {path} is a corrupt archive ({bad} fails its CRC)")
    if "bytecode.pkl" in names:
        return PTL
    if any(n.startswith("code/") for n in names) and "constants.pkl" in names:
        return TORCHSCRIPT
    if "data.pkl" in names:
        return CHECKPOINT
    raise InputError(f"cannot read model: {path} is a zip archive but not a torch model file "
                     "(no data.pkl, code/ or bytecode.pkl)")


def _what_else(head: bytes, size: int) -> str:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"version https://git-lfs"):
        return f"is a Git LFS pointer ({size} bytes), not the model; run `git lfs pull`"
    if text[:1] == b"<":
        return ("is an HTML page, not a model (a download that saved an error or login page?)"
                if b"html" in text[:200].lower() else "is XML or HTML, not a model")
    if text[:1] in (b"{", b"["):
        return "is JSON, not a model file"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "is a text file, not a model file"
    return "is not a model file osdml knows (.pt, .pth, .ptl, .pte, .bpte or .tflite)"
