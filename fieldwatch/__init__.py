"""fieldwatch: remote equipment monitoring and auto-ticketing."""

__version__ = "0.1.0"
