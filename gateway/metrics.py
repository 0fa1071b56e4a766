"""Prometheus metrics shared by ingest, fleet and the API (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_STORED = Counter("cbcc_events_stored", "Events stored (new rows).", registry=REGISTRY)
EVENTS_DUPLICATE = Counter("cbcc_events_duplicate", "Events received again and not stored twice.",
                           registry=REGISTRY)  # fmt: skip
QUARANTINED = Counter("cbcc_quarantined", "Messages quarantined, by reason.", ["reason"], registry=REGISTRY)
BATCHES = Counter("cbcc_ingest_batches", "Ingest batches committed.", registry=REGISTRY)
BATCH_SECONDS = Histogram("cbcc_ingest_batch_seconds", "Time to verify and commit one batch.",
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                          registry=REGISTRY)  # fmt: skip
DB_ERRORS = Counter("cbcc_ingest_db_errors", "Batches that failed to commit (retried, not acked).",
                    registry=REGISTRY)  # fmt: skip
MQTT_CONNECTED = Gauge("cbcc_mqtt_connected", "1 while the gateway is connected to the broker.",
                       registry=REGISTRY)  # fmt: skip
READERS_ONLINE = Gauge("cbcc_readers_online", "Readers whose last status says online.", registry=REGISTRY)
HEARTBEATS = Counter("cbcc_heartbeats", "Health messages received.", registry=REGISTRY)
TIME_REPLIES = Counter("cbcc_time_replies", "Time replies sent to readers.", registry=REGISTRY)
ALARMS_ACTIVE = Gauge("cbcc_alarms_active", "Active alarms.", registry=REGISTRY)
