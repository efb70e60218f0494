"""Remote diagnostics on the collector: signing, sending, results on the ticket, approvals."""
