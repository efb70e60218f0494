"""Enrolling a device in one command (issue 17, docs/enroll.md).

    acl.py      what a device may do on the broker: pure, from its site, name and targets
    tokens.py   one-time enrollment tokens: made, hashed, parsed (pure)
    store.py    tokens, identities and the audit trail in the collector's database
    brokers.py  the broker's own provisioning interface: Mosquitto dynamic security, RabbitMQ
    service.py  enroll / exchange / rotate / retire, tying the three together
    routes.py   POST /api/v1/enroll: the device trades its token for its credentials
"""
