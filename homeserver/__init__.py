"""Drocsid: a self-hosted Discord alternative built as a federated Matrix homeserver."""

__version__ = "0.1.0"
