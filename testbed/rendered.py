"""Files generated from the topology (compose, Kubernetes): written under a root, and found stale when they differ."""
from __future__ import annotations

from pathlib import Path


def write_files(root: Path, files: dict[Path, str]) -> list[Path]:
    """Write each generated file under root (folders made as needed); the paths written."""
    written = []
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def differing(root: Path, files: dict[Path, str]) -> list[Path]:
    """The generated files missing under root or holding other text than they should."""
    return [root / path for path, text in files.items()
            if not (root / path).exists() or (root / path).read_text(encoding="utf-8") != text]
