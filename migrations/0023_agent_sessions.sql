-- Checkout sessions opened by AI agents (UCP, ACP) and the agentic
-- protocols' request keys (Idempotency-Key), so a replayed request gets
-- the stored answer on every instance and after restarts.

CREATE TABLE cw_agent_sessions (
    id         uuid PRIMARY KEY,
    agent      text NOT NULL,
    cart_id    uuid NOT NULL UNIQUE REFERENCES cw_carts (id),
    version    bigint NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);

CREATE TABLE cw_agent_requests (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    claimed_at  timestamptz NOT NULL,
    status      integer CHECK (status BETWEEN 100 AND 599),
    body        bytea,
    PRIMARY KEY (scope, key)
);
CREATE INDEX cw_agent_requests_claimed ON cw_agent_requests (claimed_at);
