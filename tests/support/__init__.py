"""Shared test fixtures: databases on both engines, in-process and subprocess homeservers."""
