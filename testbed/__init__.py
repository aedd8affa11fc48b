"""Command line, topology and lifecycle of the simulated municipal network testbed."""
