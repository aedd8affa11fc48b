"""Locust users for every kind of terminal of the testbed."""
