"""The topology, as the testbed's commands use it (it lives in nodes/, which every node reads)."""
from nodes.topology import DNS_SUFFIX, NODE_KINDS, Municipality, Node, Operator, Topology  # noqa: F401
