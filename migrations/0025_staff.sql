-- Staff accounts, roles and sessions (issue #31): who in the back office
-- may do what. Accounts and roles are documents, like agent sessions; the
-- email is a column so it is unique among staff. Sessions keep only the
-- SHA-256 of their token.

CREATE TABLE cw_staff (
    id         uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    version    bigint NOT NULL CHECK (version >= 0),
    created_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);

CREATE TABLE cw_staff_roles (
    name text PRIMARY KEY,
    doc  jsonb NOT NULL
);

CREATE TABLE cw_staff_sessions (
    token_hash text PRIMARY KEY,
    staff_id   uuid NOT NULL REFERENCES cw_staff (id),
    expires_at timestamptz NOT NULL
);
CREATE INDEX cw_staff_sessions_staff ON cw_staff_sessions (staff_id);
CREATE INDEX cw_staff_sessions_expiry ON cw_staff_sessions (expires_at);
