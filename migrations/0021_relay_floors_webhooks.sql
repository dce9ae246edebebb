-- The relay's floor per sink (issue #27): every event of a transaction
-- below `tx` was delivered to the sink, or belongs to an aggregate parked
-- for it, or came before the sink existed; a claim reads only from the
-- floor up. `generation` changes whenever a replay lowers the floor, so a
-- claim that computed a higher one from an older view does not move it.
CREATE TABLE cw_relay_floors (
    sink       text PRIMARY KEY,
    tx         xid8 NOT NULL,
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO cw_relay_floors (sink, tx)
SELECT DISTINCT sink, '0'::xid8 FROM cw_relay_streams;

-- Webhook subscriptions. The secret is kept as given: signing needs it.
CREATE TABLE cw_webhooks (
    id            uuid PRIMARY KEY,
    url           text NOT NULL,
    event_types   text[] NOT NULL,
    secret        text NOT NULL,
    description   text NOT NULL,
    created_at    timestamptz NOT NULL,
    paused_at     timestamptz,
    pause_reason  text,
    failing_since timestamptz,
    failures      integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    CHECK ((paused_at IS NULL) = (pause_reason IS NULL))
);

-- Handled inbox entries are pruned by the end of their claim.
CREATE INDEX cw_inbox_handled ON cw_inbox (lease_until) WHERE handled;
