-- The usual checkout's first commit in one round trip: claim a key never
-- seen and reserve its stock and usage, all or nothing.
--
-- Returns NULL, having written nothing, when the key exists. Raises
-- SQLSTATE CW001 when the stock is not there and CW002 when a usage limit
-- would be passed: the statement then changes nothing, and the engine takes
-- the general path, which names the exact shortfall. Otherwise returns the
-- reservation's lines as a JSON array of [variant, location, quantity].
--
-- Stock is taken as the general path takes it when one location suffices:
-- each variant from its first location by priority (then id). A variant
-- that needs several locations raises CW001 and the general path splits
-- it. Variants are taken in id order (the general path's lock order), usage
-- counters after stock, by name. The caller passes tracked variants only,
-- merged and sorted by id, and claims merged and sorted by counter.
CREATE FUNCTION cw_begin_and_reserve(
    p_key text, p_cart uuid, p_token text, p_lease uuid, p_lease_until timestamptz,
    p_now timestamptz, p_reservation uuid, p_expires timestamptz,
    p_variants uuid[], p_quantities bigint[],
    p_counters text[], p_amounts bigint[], p_limits bigint[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    loc uuid;
    -- The reservation's lines.
    u_var uuid[] := '{}';
    u_loc uuid[] := '{}';
    u_qty bigint[] := '{}';
    i int;
    used_now bigint;
BEGIN
    INSERT INTO cw_checkouts (key, cart_id, payment_token, attempt, state, lease_token,
                              lease_until, created_at, reservation_id)
    VALUES (p_key, p_cart, p_token, 1, 'in_progress', p_lease, p_lease_until, p_now, p_reservation)
    ON CONFLICT (key) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
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
        u_var := u_var || p_variants[i];
        u_loc := u_loc || loc;
        u_qty := u_qty || p_quantities[i];
    END LOOP;
    INSERT INTO cw_reservation_lines (reservation_id, line_no, variant_id, location_id, quantity)
    SELECT p_reservation, u.n, u.v, u.l, u.q
      FROM unnest(u_var, u_loc, u_qty) WITH ORDINALITY AS u(v, l, q, n);

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

    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_array(u.v, u.l, u.q) ORDER BY u.n), '[]'::jsonb)
              FROM unnest(u_var, u_loc, u_qty) WITH ORDINALITY AS u(v, l, q, n));
END
$$;
