-- Reservation lines kept inline (issue #11): a reservation's lines are
-- three arrays on its own row — variant, location, quantity, in line order —
-- instead of one row each in cw_reservation_lines.
--
-- Why: the checkout's first commit wrote one line row per cart line, each
-- with a primary key, a variant index entry and a foreign-key check (an
-- internal query per row). Measured in BENCHMARKS.md (session 5), those rows
-- were the largest single cost of commit 1 after the stock updates. Every
-- reader of lines reads one reservation at a time or a handful by id, so
-- arrays serve them as well; the two readers that search by variant (an
-- expired reservation holding a variant; a variant ever reserved, before it
-- is deleted) go through the pending index or are rare staff actions.
--
-- The fast path's function also takes each variant's location when the
-- caller knows it (read with the cart, in the same round trip as pricing):
-- a NULL location is looked up as before (first by priority).
ALTER TABLE cw_reservations
    ADD COLUMN variant_ids  uuid[]   NOT NULL DEFAULT '{}',
    ADD COLUMN location_ids uuid[]   NOT NULL DEFAULT '{}',
    ADD COLUMN quantities   bigint[] NOT NULL DEFAULT '{}';

UPDATE cw_reservations r
   SET variant_ids = l.v, location_ids = l.l, quantities = l.q
  FROM (SELECT reservation_id,
               array_agg(variant_id ORDER BY line_no) AS v,
               array_agg(location_id ORDER BY line_no) AS l,
               array_agg(quantity ORDER BY line_no) AS q
          FROM cw_reservation_lines GROUP BY reservation_id) l
 WHERE l.reservation_id = r.id;

DROP TABLE cw_reservation_lines;

ALTER TABLE cw_reservations
    ALTER COLUMN variant_ids DROP DEFAULT,
    ALTER COLUMN location_ids DROP DEFAULT,
    ALTER COLUMN quantities DROP DEFAULT;

DROP FUNCTION cw_begin_and_reserve(text, uuid, text, uuid, timestamptz, timestamptz, uuid,
                                   timestamptz, uuid[], bigint[], text[], bigint[], bigint[]);

-- As migration 0005's function, with p_locations: the location to take each
-- variant from when the caller read it (NULL: the first by priority), and
-- the reservation's lines written inline after the stock is taken.
CREATE FUNCTION cw_begin_and_reserve(
    p_key text, p_cart uuid, p_token text, p_lease uuid, p_lease_until timestamptz,
    p_now timestamptz, p_reservation uuid, p_expires timestamptz,
    p_variants uuid[], p_locations uuid[], p_quantities bigint[],
    p_counters text[], p_amounts bigint[], p_limits bigint[]
) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE
    loc uuid;
    -- The location each variant was taken from, in the caller's order.
    u_loc uuid[] := '{}';
    i int;
    used_now bigint;
BEGIN
    INSERT INTO cw_checkouts (key, cart_id, payment_token, attempt, state, lease_token,
                              lease_until, created_at, reservation_id)
    VALUES (p_key, p_cart, p_token, 1, 'in_progress', p_lease, p_lease_until, p_now, p_reservation);

    -- Each variant (in the caller's order, by id: the general path's lock
    -- order) from its location, when that location holds enough: the
    -- conditional update locks the row and re-checks under the lock, so
    -- concurrent checkouts never oversell. A variant that would need
    -- several locations goes to the general path, which splits it.
    FOR i IN 1 .. coalesce(array_length(p_variants, 1), 0) LOOP
        loc := p_locations[i];
        IF loc IS NULL THEN
            SELECT s2.location_id INTO loc
              FROM cw_stock s2 JOIN cw_locations l ON l.id = s2.location_id
             WHERE s2.variant_id = p_variants[i]
             ORDER BY l.priority, l.id LIMIT 1;
        END IF;
        UPDATE cw_stock s SET reserved = s.reserved + p_quantities[i]
         WHERE s.variant_id = p_variants[i] AND s.location_id = loc
           AND s.on_hand - s.reserved >= p_quantities[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough stock at the location' USING ERRCODE = 'CW001';
        END IF;
        u_loc[i] := loc;
    END LOOP;
    INSERT INTO cw_reservations (id, checkout_key, state, expires_at, created_at,
                                 variant_ids, location_ids, quantities)
    VALUES (p_reservation, p_key, 'pending', p_expires, p_now,
            coalesce(p_variants, '{}'), u_loc, coalesce(p_quantities, '{}'));

    IF coalesce(array_length(p_counters, 1), 0) > 0 THEN
        INSERT INTO cw_usage_counters (counter, used)
        SELECT unnest(p_counters), 0 ON CONFLICT DO NOTHING;
        PERFORM 1 FROM cw_usage_counters WHERE counter = ANY (p_counters)
         ORDER BY counter FOR UPDATE;
        FOR i IN 1 .. array_length(p_counters, 1) LOOP
            SELECT used INTO used_now FROM cw_usage_counters WHERE counter = p_counters[i];
            IF used_now > p_limits[i] - p_amounts[i] THEN
                RAISE EXCEPTION 'usage limit reached' USING ERRCODE = 'CW002';
            END IF;
            UPDATE cw_usage_counters SET used = used + p_amounts[i] WHERE counter = p_counters[i];
        END LOOP;
        INSERT INTO cw_reservation_claims (reservation_id, counter, amount, limit_value)
        SELECT p_reservation, c, a, m FROM unnest(p_counters, p_amounts, p_limits) AS u(c, a, m);
    END IF;

    RETURN u_loc;
END
$$;

-- Order documents compressed with LZ4 where the server has it (PostgreSQL
-- 14+ built with lz4, as Debian's and most packages are): an order's
-- document is about 3.7 kB of JSON, past the 2 kB TOAST threshold, and the
-- default pglz spent about 4 % of the server's time in the checkout bench
-- compressing it (BENCHMARKS.md, session 8). Documents already stored keep
-- their compression; both read alike.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
                WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE cw_orders ALTER COLUMN doc SET COMPRESSION lz4;
    END IF;
END
$$;
