"""cbcc gateway: lossless ingest of reader events, the reader fleet, the REST API."""
