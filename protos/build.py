"""Regenerate the Python code of the .proto files: ``python -m protos.build`` (``make protos``)."""
from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def proto_files() -> list[Path]:
    """Every .proto source of the project."""
    return sorted((ROOT / "protos").glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc for every .proto into out_dir (as package ``protos``); return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(resources.files("grpc_tools") / "_proto")
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
            f"--pyi_out={out_dir}"] + [str(p.relative_to(ROOT)) for p in proto_files()]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    return sorted((out_dir / "protos").glob("*_pb2*.py*"))


def main() -> int:
    """Regenerate the committed code next to the .proto files."""
    written = generate(ROOT)
    print(f"regenerated {len(written)} files in {ROOT / 'protos'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
