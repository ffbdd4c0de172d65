"""Drocsid concepts (servers, channels, roles, permissions) on top of Matrix rooms."""
