"""Populations and SimPy workloads of the testbed."""
