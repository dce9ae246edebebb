-- The order row, lighter to write (issue #11).
--
-- 1. The document is `json`, not `jsonb`. Nothing queries inside it: what is
--    queried has its own column (customer, email, status, placed_at, total,
--    payment reference, pending work). As `jsonb`, each write parsed the
--    3.7 kB document into jsonb's binary tree (sorting every object's keys)
--    and each read printed it back to text; in the checkout bench that
--    parse alone was 29 µs of server CPU per order, the largest single cost
--    of commit 2. As `json`, the server only checks that the text is JSON,
--    keeps it as written and hands it back as is. The two queries that look
--    inside (the order's version when it is saved, the variants a staff
--    member may delete) use `json`'s operators.
-- 2. Compressed, the text fits in the row. As `jsonb` the document
--    compressed to about 2.0 kB, did not fit under the 2 kB TOAST target,
--    and went to the TOAST table: one more heap insert, one more index
--    insert and their WAL for each order. JSON text compresses better
--    (1.5 kB with LZ4) and stays in the row. In a PL/pgSQL loop inserting
--    5,000 typical orders into a copy of this table with all its indexes,
--    each insert took 41-43 µs as `jsonb` and 24-27 µs as `json`.
-- 3. The customer index leaves guest orders out: nothing looks orders up by
--    a missing customer, and a guest checkout then writes one index entry
--    fewer. A lookup by customer (`customer_id = $n`, or the customer given
--    as a value) implies the index's condition.
ALTER TABLE cw_orders ALTER COLUMN doc TYPE json USING doc::json;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
                WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE cw_orders ALTER COLUMN doc SET COMPRESSION lz4;
    END IF;
END
$$;

DROP INDEX cw_orders_customer;
CREATE INDEX cw_orders_customer ON cw_orders (customer_id, id DESC)
    WHERE customer_id IS NOT NULL;

-- Commit 2 takes the order's document as `json` (see 0015; otherwise
-- unchanged).
DROP FUNCTION cw_place_order(
    text, uuid, timestamptz, uuid, uuid, jsonb, uuid, bigint, uuid, text, numeric, jsonb, uuid,
    jsonb, text, boolean, text);

CREATE FUNCTION cw_place_order(
    p_key text, p_lease uuid, p_now timestamptz, p_reservation uuid, p_order uuid,
    p_now_json jsonb, p_cart uuid, p_version bigint, p_customer uuid, p_currency text,
    p_total numeric, p_doc json, p_event uuid, p_kind jsonb, p_reference text,
    p_pending boolean, p_email text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cw_checkouts SET state = 'completed', order_id = p_order, awaiting = NULL
     WHERE key = p_key AND lease_token = p_lease AND state = 'in_progress'
       AND reservation_id = p_reservation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the lease is not held' USING ERRCODE = 'CW003';
    END IF;
    UPDATE cw_reservations SET state = 'allocated', expires_at = NULL, order_id = p_order
     WHERE id = p_reservation AND state = 'pending' AND expires_at > p_now;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the reservation is not held' USING ERRCODE = 'CW003';
    END IF;
    UPDATE cw_carts SET active = false, version = version + 1, updated_at = p_now,
           doc = doc || jsonb_build_object(
               'status', jsonb_build_object('status', 'completed', 'order_id', p_order),
               'version', version + 1,
               'updated_at', p_now_json)
     WHERE id = p_cart AND version = p_version AND active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the cart changed' USING ERRCODE = 'CW004';
    END IF;
    IF p_customer IS NOT NULL THEN
        UPDATE cw_customers SET version = version + 1,
               doc = doc || jsonb_build_object(
                   'orders_placed', coalesce((doc->>'orders_placed')::bigint, 0) + 1,
                   'version', version + 1)
         WHERE id = p_customer;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown customer' USING ERRCODE = 'CW004';
        END IF;
    END IF;
    INSERT INTO cw_orders (id, customer_id, checkout_key, currency, total, placed_at, status,
                           payment_reference, doc, pending_work, email)
    VALUES (p_order, p_customer, p_key, p_currency, p_total, p_now, 'placed',
            p_reference, p_doc, p_pending, p_email);
    INSERT INTO cw_events (id, occurred_at, kind) VALUES (p_event, p_now, p_kind);
END
$$;
