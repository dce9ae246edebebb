-- Every event names its aggregate and its place among the aggregate's
-- events (issue #27): `order:<id>` 1, 2, 3, … The key is derived from the
-- event's kind, exactly as `EventKind::aggregate` derives it in Rust (a
-- test holds the two equal for every kind), and numbered by a counter row
-- per aggregate taken in the inserting transaction (its row lock orders
-- the writers of one aggregate; other aggregates never wait). A trigger
-- does both, so every insert — the store's statements and its server-side
-- functions alike — gets them without a change.

CREATE FUNCTION cw_event_aggregate(kind jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind->>'type'
        WHEN 'order_placed' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_captured' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_refunded' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_voided' THEN 'order:' || (kind->>'order_id')
        WHEN 'order_shipped' THEN 'order:' || (kind->>'order_id')
        WHEN 'shipment_delivered' THEN 'order:' || (kind->>'order_id')
        WHEN 'items_returned' THEN 'order:' || (kind->>'order_id')
        WHEN 'order_cancelled' THEN 'order:' || (kind->>'order_id')
        WHEN 'customer_changed' THEN 'customer:' || (kind->>'customer_id')
        WHEN 'catalog_changed' THEN CASE kind->'change'->>'kind'
            WHEN 'product_created' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_updated' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_status_changed' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_deleted' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'category_changed' THEN 'category:' || (kind->'change'->>'category_id')
            WHEN 'category_deleted' THEN 'category:' || (kind->'change'->>'category_id')
            WHEN 'collection_changed' THEN 'collection:' || (kind->'change'->>'collection_id')
            WHEN 'collection_deleted' THEN 'collection:' || (kind->'change'->>'collection_id')
            WHEN 'channel_changed' THEN 'channel:' || (kind->'change'->>'channel_id')
            END
        WHEN 'promotion_changed' THEN CASE kind->'change'->>'kind'
            WHEN 'saved' THEN 'promotion:' || (kind->'change'->>'promotion_id')
            WHEN 'coupons_created' THEN 'promotion:' || (kind->'change'->>'promotion_id')
            WHEN 'price_list_saved' THEN 'price_list:' || (kind->'change'->>'price_list_id')
            END
        WHEN 'stock_changed' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'low_stock' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'stock_replenished' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'admin_change' THEN 'shop'
    END
$$;

CREATE TABLE cw_aggregate_versions (
    aggregate text PRIMARY KEY,
    version   bigint NOT NULL CHECK (version >= 1)
);

ALTER TABLE cw_events ADD COLUMN aggregate text, ADD COLUMN aggregate_version bigint;

-- Events recorded before: their aggregate, numbered in commit order.
UPDATE cw_events e SET aggregate = coalesce(cw_event_aggregate(e.kind), 'unknown');
UPDATE cw_events e SET aggregate_version = n.v
FROM (SELECT sequence, row_number() OVER (PARTITION BY aggregate ORDER BY tx, sequence) AS v
      FROM cw_events) n
WHERE n.sequence = e.sequence;
INSERT INTO cw_aggregate_versions (aggregate, version)
SELECT aggregate, max(aggregate_version) FROM cw_events GROUP BY aggregate;

ALTER TABLE cw_events
    ALTER COLUMN aggregate SET NOT NULL,
    ALTER COLUMN aggregate_version SET NOT NULL,
    ADD CONSTRAINT cw_events_aggregate_version_valid CHECK (aggregate_version >= 1);
CREATE UNIQUE INDEX cw_events_by_aggregate ON cw_events (aggregate, aggregate_version);

CREATE FUNCTION cw_number_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.aggregate := coalesce(cw_event_aggregate(NEW.kind), 'unknown');
    INSERT INTO cw_aggregate_versions AS v (aggregate, version) VALUES (NEW.aggregate, 1)
    ON CONFLICT (aggregate) DO UPDATE SET version = v.version + 1
    RETURNING v.version INTO NEW.aggregate_version;
    RETURN NEW;
END
$$;

CREATE TRIGGER cw_number_event BEFORE INSERT ON cw_events
    FOR EACH ROW EXECUTE FUNCTION cw_number_event();
