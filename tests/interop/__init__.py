"""Scenarios run by real client libraries against a running homeserver."""
