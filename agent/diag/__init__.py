"""Remote diagnostics on the agent: an allow-list of checks, consent, signatures, audit."""
