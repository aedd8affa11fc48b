"""The testbed PKI: one root CA, an issuing CA per trust domain, node, terminal and probe certificates."""
