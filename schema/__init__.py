"""SQL migrations, shipped as package data and applied in order at start.

File names: ``NNNN_name.sql`` for SQL both engines accept, or a pair
``NNNN_name.sqlite.sql`` / ``NNNN_name.postgres.sql`` where the dialects differ.
"""
