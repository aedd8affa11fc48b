"""The 町字 list, as the scenarios use it (it lives in nodes/, where kizon checks addresses against it)."""
from nodes.towns import Town, town, towns  # noqa: F401
