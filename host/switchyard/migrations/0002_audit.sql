-- Migration 2: the audit log of rule changes in the cluster store.
--
-- The leader writes each entry of its reload manager's audit log here (with
-- its epoch, fenced like the journal), so `GET /v1/audit` on any node shows
-- the cluster's history, not one node's.
CREATE TABLE switchyard_audit (
    id bigserial PRIMARY KEY,
    epoch bigint NOT NULL,
    node text NOT NULL,
    entry jsonb NOT NULL
);

CREATE TRIGGER switchyard_audit_fence AFTER INSERT ON switchyard_audit
    REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT EXECUTE FUNCTION switchyard_fence();
