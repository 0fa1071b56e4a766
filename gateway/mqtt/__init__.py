"""The gateway's MQTT adapters: consumer, embedded broker and ingest, downlink, broker configuration."""
