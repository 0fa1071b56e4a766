"""Test and demo tools standing in for outside systems (national database, a reader on the unix port)."""
