-- The fast path's first commit, lighter (issue #11): the same work as
-- migration 0004's function in fewer server-side steps.
--
-- * A key seen before raises unique_violation (23505) from a plain INSERT
--   instead of a speculative `ON CONFLICT DO NOTHING`; the caller treats
--   23505 like CW001/CW002: nothing was written, take the general path.
-- * The answer is the locations taken, one per variant in the caller's
--   order (a uuid[]), instead of a JSON array rebuilt from three arrays.
--
-- Everything else is as in 0004: stock from each variant's first location
-- by priority through a conditional update that re-checks under the row
-- lock (no oversell), variants in id order, usage counters after stock by
-- name, CW001 when stock is short, CW002 when a usage limit would be
-- passed; the statement then changes nothing.
DROP FUNCTION cw_begin_and_reserve(text, uuid, text, uuid, timestamptz, timestamptz, uuid,
                                   timestamptz, uuid[], bigint[], text[], bigint[], bigint[]);

CREATE FUNCTION cw_begin_and_reserve(
    p_key text, p_cart uuid, p_token text, p_lease uuid, p_lease_until timestamptz,
    p_now timestamptz, p_reservation uuid, p_expires timestamptz,
    p_variants uuid[], p_quantities bigint[],
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
    INSERT INTO cw_reservations (id, checkout_key, state, expires_at, created_at)
    VALUES (p_reservation, p_key, 'pending', p_expires, p_now);

    -- Each variant (in the caller's order, by id: the general path's lock
    -- order) from its first location by priority, when that location holds
    -- enough: the conditional update locks the row and re-checks under the
    -- lock, so concurrent checkouts never oversell. A variant that would
    -- need several locations goes to the general path, which splits it.
    FOR i IN 1 .. coalesce(array_length(p_variants, 1), 0) LOOP
        UPDATE cw_stock s SET reserved = s.reserved + p_quantities[i]
         WHERE s.variant_id = p_variants[i]
           AND s.location_id = (SELECT s2.location_id
                                  FROM cw_stock s2 JOIN cw_locations l ON l.id = s2.location_id
                                 WHERE s2.variant_id = p_variants[i]
                                 ORDER BY l.priority, l.id LIMIT 1)
           AND s.on_hand - s.reserved >= p_quantities[i]
        RETURNING s.location_id INTO loc;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough stock at the first location' USING ERRCODE = 'CW001';
        END IF;
        u_loc[i] := loc;
    END LOOP;
    INSERT INTO cw_reservation_lines (reservation_id, line_no, variant_id, location_id, quantity)
    SELECT p_reservation, u.n, u.v, u.l, u.q
      FROM unnest(p_variants, u_loc, p_quantities) WITH ORDINALITY AS u(v, l, q, n);

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
