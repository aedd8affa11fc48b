"""`testbed migrate`: the government-cloud migration rehearsal (DESIGN §7)."""
