"""Example configs, shipped as package data (fieldwatch.default_config)."""
