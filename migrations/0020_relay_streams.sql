-- The event relay's progress (issue #27): per sink and aggregate, the last
-- version delivered, the lease of the relay delivering the next one, when
-- to try a failed one again, and whether it is parked for staff.
CREATE TABLE cw_relay_streams (
    sink            text NOT NULL,
    aggregate       text NOT NULL,
    delivered       bigint NOT NULL CHECK (delivered >= 0),
    lease_owner     uuid,
    lease_until     timestamptz,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    parked          bigint,
    last_error      text NOT NULL DEFAULT '',
    PRIMARY KEY (sink, aggregate),
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX cw_relay_streams_parked ON cw_relay_streams (sink, aggregate) WHERE parked IS NOT NULL;

-- A consumer's inbox: the events it handled, or holds while handling one.
CREATE TABLE cw_inbox (
    consumer    text NOT NULL,
    event_id    uuid NOT NULL,
    handled     boolean NOT NULL,
    lease_until timestamptz NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
