"""The emulated systems, one module per node kind, and the shared runtime they all run on."""
from nodes.kinds import KINDS as _KINDS

NODE_MODULES = {name: k.module for name, k in _KINDS.items()}  # kind → its module (derived from nodes/kinds.py)
