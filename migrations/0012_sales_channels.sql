-- Sales channels (issue #16): each a document; its name unique. Carts and
-- orders carry their channel in their own documents.
CREATE TABLE cw_channels (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    version    bigint NOT NULL,
    created_at timestamptz NOT NULL,
    doc        jsonb NOT NULL
);
