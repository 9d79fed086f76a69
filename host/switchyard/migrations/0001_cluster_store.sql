-- Migration 1: the cluster store of `switchyard serve` on PostgreSQL.
--
-- Applied once, in one transaction, by the first node that starts on the
-- database (see `serve/pg.rs`); its version is recorded in switchyard_schema.
-- A migration is never edited once released: a change is a new file.

-- Who leads, and the fencing token. The leader holds a session advisory lock
-- on a dedicated connection; taking the lock, a node raises `epoch` here and
-- writes every record with that epoch. A write carrying another epoch is
-- refused by the triggers below, so a deposed leader cannot write even if it
-- does not know yet that it was deposed.
CREATE TABLE switchyard_leader (
    id integer PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL,
    node text NOT NULL,
    address text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
INSERT INTO switchyard_leader (id, epoch, node, address) VALUES (1, 0, '', '');

-- The journal: one row per accepted input (the JSON record of serve/journal.rs),
-- numbered without gaps by the leader that wrote it.
CREATE TABLE switchyard_records (
    seq bigint PRIMARY KEY,
    epoch bigint NOT NULL,
    body bytea NOT NULL
);

-- The latest snapshot (and, for a standby that lags, the one before it: the
-- records between the two are kept until the next snapshot).
CREATE TABLE switchyard_snapshots (
    seq bigint PRIMARY KEY,
    epoch bigint NOT NULL,
    state bytea NOT NULL
);

-- Plugin components and uploaded fixtures, by the SHA-256 of their bytes.
CREATE TABLE switchyard_blobs (
    key text PRIMARY KEY,
    bytes bytea NOT NULL
);

-- The fence: every row a statement inserts must carry the current epoch. The
-- leader row is read FOR SHARE, so a takeover (which updates it) waits for a
-- write in flight to commit, and a write after the takeover sees the new epoch.
CREATE FUNCTION switchyard_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_epoch bigint;
    stale bigint;
BEGIN
    SELECT epoch INTO current_epoch FROM switchyard_leader WHERE id = 1 FOR SHARE;
    SELECT epoch INTO stale FROM fresh WHERE epoch <> current_epoch LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'fenced: a write of epoch % on %, but the leader''s epoch is %', stale, TG_TABLE_NAME, current_epoch
            USING ERRCODE = 'SYF01';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER switchyard_records_fence AFTER INSERT ON switchyard_records
    REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT EXECUTE FUNCTION switchyard_fence();
CREATE TRIGGER switchyard_snapshots_fence AFTER INSERT ON switchyard_snapshots
    REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT EXECUTE FUNCTION switchyard_fence();
