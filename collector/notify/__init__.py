"""Notifications to people (email), delivered through the outbox like any desk."""
