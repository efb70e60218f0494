"""Notifications to people — email (email.py) and Apprise channels routed to whoever is on call
(apprise_channel.py, routing.py, oncall.py) — delivered through the outbox like any desk."""
