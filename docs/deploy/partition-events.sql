-- National deployment: the event table hash-partitioned by reader, for PostgreSQL 13+.
-- Hash partitions keep the (reader_id, seq) uniqueness that makes ingest idempotent (the
-- partition key is part of every unique key), spread ingest over partitions and keep each
-- partition's indexes small. Run once, after `cbcc gateway migrate`; names stay as the
-- migrations made them, so ingest and later migrations see the same table.
BEGIN;
ALTER TABLE event RENAME TO event_unpartitioned;
ALTER TABLE event_unpartitioned DROP CONSTRAINT uq_event_reader_seq;
ALTER TABLE event_unpartitioned DROP CONSTRAINT event_pkey;
DROP INDEX ix_event_occurred_at, ix_event_reader_id, ix_event_serial, ix_event_staff_time, ix_event_door_time;
ALTER SEQUENCE event_id_seq OWNED BY NONE;
CREATE TABLE event (LIKE event_unpartitioned INCLUDING DEFAULTS) PARTITION BY HASH (reader_id);
ALTER TABLE event ADD CONSTRAINT event_pkey PRIMARY KEY (id, reader_id);
ALTER TABLE event ADD CONSTRAINT uq_event_reader_seq UNIQUE (reader_id, seq);
CREATE INDEX ix_event_occurred_at ON event (occurred_at);
CREATE INDEX ix_event_reader_id ON event (reader_id);
CREATE INDEX ix_event_serial ON event (serial);
CREATE INDEX ix_event_staff_time ON event (staff_code, occurred_at);
CREATE INDEX ix_event_door_time ON event (door, occurred_at);
DO $$
BEGIN
    FOR i IN 0..31 LOOP
        EXECUTE format('CREATE TABLE event_p%s PARTITION OF event FOR VALUES WITH (MODULUS 32, REMAINDER %s)',
                       i, i);
    END LOOP;
END $$;
INSERT INTO event SELECT * FROM event_unpartitioned;
DROP TABLE event_unpartitioned;
ALTER SEQUENCE event_id_seq OWNED BY event.id;
COMMIT;
