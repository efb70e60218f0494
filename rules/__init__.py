"""The default rule pack, shipped as package data (fieldwatch.default_rules)."""
