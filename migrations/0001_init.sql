-- cartwright schema. Aggregates that are read and written whole (products,
-- customers, carts, orders) are JSONB documents with the columns that queries
-- and constraints need beside them. Everything that concurrency depends on
-- (stock, reservations, checkouts, events) is plain rows with CHECK
-- constraints as a backstop for the conditional updates in the code.

CREATE TABLE cw_categories (
    id        uuid PRIMARY KEY,
    parent_id uuid REFERENCES cw_categories (id),
    doc       jsonb NOT NULL
);

CREATE TABLE cw_collections (
    id  uuid PRIMARY KEY,
    doc jsonb NOT NULL
);

-- `doc` is the whole product; `summary` holds only what pricing needs
-- (title, status, tags, collections), so a cart's catalog lookup reads a few
-- small documents instead of whole products with all their variants.
CREATE TABLE cw_products (
    id      uuid PRIMARY KEY,
    summary jsonb NOT NULL,
    doc     jsonb NOT NULL
);

CREATE TABLE cw_variants (
    id         uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES cw_products (id) ON DELETE CASCADE,
    sku        text NOT NULL UNIQUE,
    doc        jsonb NOT NULL
);
CREATE INDEX cw_variants_product ON cw_variants (product_id);

CREATE TABLE cw_product_categories (
    product_id  uuid NOT NULL REFERENCES cw_products (id) ON DELETE CASCADE,
    category_id uuid NOT NULL REFERENCES cw_categories (id),
    PRIMARY KEY (product_id, category_id)
);

CREATE TABLE cw_product_collections (
    product_id    uuid NOT NULL REFERENCES cw_products (id) ON DELETE CASCADE,
    collection_id uuid NOT NULL REFERENCES cw_collections (id),
    PRIMARY KEY (product_id, collection_id)
);

CREATE TABLE cw_customer_groups (
    id       uuid PRIMARY KEY,
    name_key text NOT NULL UNIQUE,
    doc      jsonb NOT NULL
);

CREATE TABLE cw_customers (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    version       bigint NOT NULL CHECK (version >= 0),
    password_hash text,
    doc           jsonb NOT NULL
);

CREATE TABLE cw_carts (
    id          uuid PRIMARY KEY,
    customer_id uuid REFERENCES cw_customers (id),
    currency    text NOT NULL,
    active      boolean NOT NULL,
    version     bigint NOT NULL CHECK (version >= 0),
    updated_at  timestamptz NOT NULL,
    doc         jsonb NOT NULL
);
CREATE INDEX cw_carts_customer ON cw_carts (customer_id, currency) WHERE active;

CREATE TABLE cw_locations (
    id       uuid PRIMARY KEY,
    priority integer NOT NULL CHECK (priority >= 0),
    doc      jsonb NOT NULL
);

CREATE TABLE cw_stock (
    variant_id  uuid NOT NULL REFERENCES cw_variants (id) ON DELETE CASCADE,
    location_id uuid NOT NULL REFERENCES cw_locations (id),
    on_hand     bigint NOT NULL CHECK (on_hand <= 1000000000),
    reserved    bigint NOT NULL CHECK (reserved >= 0),
    PRIMARY KEY (variant_id, location_id)
);

CREATE TABLE cw_reservations (
    id           uuid PRIMARY KEY,
    checkout_key text,
    state        text NOT NULL CHECK (state IN ('pending', 'allocated', 'committed', 'released')),
    expires_at   timestamptz,
    order_id     uuid,
    created_at   timestamptz NOT NULL,
    CHECK ((state = 'pending') = (expires_at IS NOT NULL)),
    CHECK ((state = 'allocated') = (order_id IS NOT NULL))
);
CREATE INDEX cw_reservations_pending ON cw_reservations (expires_at) WHERE state = 'pending';

CREATE TABLE cw_reservation_lines (
    reservation_id uuid NOT NULL REFERENCES cw_reservations (id),
    line_no        integer NOT NULL,
    variant_id     uuid NOT NULL,
    location_id    uuid NOT NULL,
    quantity       bigint NOT NULL CHECK (quantity >= 0), -- 0 only in passing, while shipping
    PRIMARY KEY (reservation_id, line_no)
);
CREATE INDEX cw_reservation_lines_variant ON cw_reservation_lines (variant_id);

CREATE TABLE cw_checkouts (
    key            text PRIMARY KEY,
    cart_id        uuid NOT NULL,
    payment_token  text NOT NULL,
    attempt        integer NOT NULL CHECK (attempt >= 1),
    state          text NOT NULL CHECK (state IN ('in_progress', 'retryable', 'completed', 'failed')),
    failure        jsonb,
    order_id       uuid,
    reservation_id uuid,
    lease_token    uuid NOT NULL,
    lease_until    timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    CHECK ((state = 'completed') = (order_id IS NOT NULL)),
    CHECK ((state = 'failed') = (failure IS NOT NULL))
);
CREATE INDEX cw_checkouts_stale ON cw_checkouts (lease_until) WHERE state = 'in_progress';

CREATE TABLE cw_orders (
    id           uuid PRIMARY KEY,
    customer_id  uuid,
    checkout_key text NOT NULL UNIQUE,
    currency     text NOT NULL,
    total        numeric NOT NULL CHECK (total >= 0),
    placed_at    timestamptz NOT NULL,
    status       text NOT NULL,
    payment_reference text NOT NULL,
    doc          jsonb NOT NULL
);
CREATE INDEX cw_orders_payment_ref ON cw_orders (payment_reference) WHERE payment_reference <> '';
CREATE INDEX cw_orders_customer ON cw_orders (customer_id, id DESC);
CREATE INDEX cw_orders_status ON cw_orders (status, id DESC);
CREATE INDEX cw_orders_placed ON cw_orders (placed_at);

-- The transactional outbox. Events are delivered in (tx, sequence) order and
-- only once every transaction that could still add an earlier event has
-- finished, so a reader never skips an event that commits late.
CREATE TABLE cw_events (
    sequence    bigserial PRIMARY KEY,
    tx          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id          uuid NOT NULL UNIQUE,
    occurred_at timestamptz NOT NULL,
    kind        jsonb NOT NULL
);
CREATE INDEX cw_events_order ON cw_events (tx, sequence);

CREATE TABLE cw_event_cursors (
    consumer text PRIMARY KEY,
    tx       xid8 NOT NULL,
    sequence bigint NOT NULL
);

-- Limited counters (coupon uses, promotion budgets) and the claims that
-- reservations hold on them. Locked in counter order, after stock rows.
CREATE TABLE cw_usage_counters (
    counter text PRIMARY KEY,
    used    bigint NOT NULL CHECK (used >= 0)
);

CREATE TABLE cw_reservation_claims (
    reservation_id uuid NOT NULL REFERENCES cw_reservations (id),
    counter        text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    limit_value    bigint NOT NULL CHECK (limit_value >= 0),
    PRIMARY KEY (reservation_id, counter)
);
