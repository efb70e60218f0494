"""SNMP: poll network gear with profiles, receive traps; each target is its own device.

Importing this package is cheap: pysnmp is imported only by `client`, `poller` and `traps`,
which the agent loads only when SNMP targets or the trap receiver are configured.
"""
