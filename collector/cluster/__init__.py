"""Cluster mode (issue 15): RabbitMQ topology (topology.py), declaring it (setup.py) and the
hand-over of devices between collectors (handover.py)."""
