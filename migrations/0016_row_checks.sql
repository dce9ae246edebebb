-- One CHECK per row of a checkout and of a reservation (issue #11).
--
-- PostgreSQL reads each CHECK constraint's stored expression tree back from
-- its text form at every statement that writes the table (ExecRelCheck ->
-- stringToNode), and the checkout's two commits write each of these rows
-- twice. Their five and three constraints came to 3.8 kB and 2.5 kB of node
-- text, mostly the arrays of `state IN (...)`; in the checkout bench that
-- reading was about 2.7 % of the server's time. The same rules now live in
-- one function per table (its compiled body is cached by the session), so
-- each statement reads one small expression: a call with the columns.
--
-- The rules are unchanged.
CREATE FUNCTION cw_checkout_row_valid(
    p_state text, p_attempt integer, p_order uuid, p_failure jsonb, p_awaiting jsonb
) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    RETURN p_attempt >= 1
       AND p_state IN ('in_progress', 'retryable', 'completed', 'failed', 'awaiting_payment')
       AND (p_state = 'completed') = (p_order IS NOT NULL)
       AND (p_state = 'failed') = (p_failure IS NOT NULL)
       AND (p_state <> 'awaiting_payment' OR p_awaiting IS NOT NULL);
END
$$;

CREATE FUNCTION cw_reservation_row_valid(
    p_state text, p_expires timestamptz, p_order uuid
) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
    RETURN p_state IN ('pending', 'allocated', 'committed', 'released')
       AND (p_state = 'pending') = (p_expires IS NOT NULL)
       AND (p_state = 'allocated') = (p_order IS NOT NULL);
END
$$;

ALTER TABLE cw_checkouts
    DROP CONSTRAINT cw_checkouts_attempt_check,
    DROP CONSTRAINT cw_checkouts_state_check,
    DROP CONSTRAINT cw_checkouts_check,
    DROP CONSTRAINT cw_checkouts_check1,
    DROP CONSTRAINT cw_checkouts_awaiting_check,
    ADD CONSTRAINT cw_checkouts_row_valid
        CHECK (cw_checkout_row_valid(state, attempt, order_id, failure, awaiting));

ALTER TABLE cw_reservations
    DROP CONSTRAINT cw_reservations_state_check,
    DROP CONSTRAINT cw_reservations_check,
    DROP CONSTRAINT cw_reservations_check1,
    ADD CONSTRAINT cw_reservations_row_valid
        CHECK (cw_reservation_row_valid(state, expires_at, order_id));
