"""The emulated systems, one module per node kind, and the shared runtime they all run on."""

NODE_MODULES = {
    "kizon": "nodes.kizon",
    "cs": "nodes.cs",
    "atena": "nodes.atena",
    "prefecture": "nodes.prefecture",
    "national": "nodes.national",
    "card": "nodes.card",
    "intermediate": "nodes.intermediate",
}
