"""Matrix application-service API: registrations, namespaces, transactions to bridges."""
