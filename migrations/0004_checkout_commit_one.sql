-- The usual checkout's first commit in one round trip: claim a key never
-- seen and reserve its stock and usage, all or nothing.
--
-- Returns NULL, having written nothing, when the key exists. Raises
-- SQLSTATE CW001 when the stock is not there and CW002 when a usage limit
-- would be passed: the statement then changes nothing, and the engine takes
-- the general path, which names the exact shortfall. Otherwise returns the
-- reservation's lines as a JSON array of [variant, location, quantity].
--
-- Stock is taken exactly as the general path takes it: every stock row of
-- the requested variants is locked first, in (variant, location) order
-- (the order the general path locks in, so the two never deadlock each
-- other), then each request takes from its variant's locations by
-- priority, then id. Usage counters are locked after stock, by name.
-- The caller passes tracked variants only, merged, and claims merged and
-- sorted by counter.
CREATE FUNCTION cw_begin_and_reserve(
    p_key text, p_cart uuid, p_token text, p_lease uuid, p_lease_until timestamptz,
    p_now timestamptz, p_reservation uuid, p_expires timestamptz,
    p_variants uuid[], p_quantities bigint[],
    p_counters text[], p_amounts bigint[], p_limits bigint[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int := 0;
    remaining bigint;
    take bigint;
    used_now bigint;
    lvl record;
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

    PERFORM 1 FROM cw_stock WHERE variant_id = ANY (p_variants)
     ORDER BY variant_id, location_id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_variants, 1), 0) LOOP
        remaining := p_quantities[i];
        FOR lvl IN
            SELECT s.location_id, s.on_hand - s.reserved AS available
              FROM cw_stock s JOIN cw_locations l ON l.id = s.location_id
             WHERE s.variant_id = p_variants[i]
             ORDER BY l.priority, l.id
        LOOP
            EXIT WHEN remaining = 0;
            take := least(remaining, greatest(lvl.available, 0));
            IF take > 0 THEN
                UPDATE cw_stock SET reserved = reserved + take
                 WHERE variant_id = p_variants[i] AND location_id = lvl.location_id;
                n := n + 1;
                INSERT INTO cw_reservation_lines (reservation_id, line_no, variant_id, location_id, quantity)
                VALUES (p_reservation, n, p_variants[i], lvl.location_id, take);
                remaining := remaining - take;
            END IF;
        END LOOP;
        IF remaining > 0 THEN
            RAISE EXCEPTION 'not enough stock' USING ERRCODE = 'CW001';
        END IF;
    END LOOP;

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

    RETURN coalesce(
        (SELECT jsonb_agg(jsonb_build_array(variant_id, location_id, quantity) ORDER BY line_no)
           FROM cw_reservation_lines WHERE reservation_id = p_reservation),
        '[]'::jsonb);
END
$$;
