"""Matrix server-server API: keys, request signing, transactions, joins, backfill."""
