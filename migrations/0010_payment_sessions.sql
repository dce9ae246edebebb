-- Payment sessions (issue #13): a checkout whose payment waits for the
-- customer (3-D Secure, a redirect) or the provider keeps, beside its
-- record, the session and the order it will place, and is found by the
-- provider's reference when the provider's event arrives.
ALTER TABLE cw_checkouts DROP CONSTRAINT cw_checkouts_state_check;
ALTER TABLE cw_checkouts ADD CONSTRAINT cw_checkouts_state_check
    CHECK (state IN ('in_progress', 'retryable', 'completed', 'failed', 'awaiting_payment'));
ALTER TABLE cw_checkouts ADD COLUMN awaiting jsonb, ADD COLUMN payment_reference text;
ALTER TABLE cw_checkouts ADD CONSTRAINT cw_checkouts_awaiting_check
    CHECK (state <> 'awaiting_payment' OR awaiting IS NOT NULL);
CREATE UNIQUE INDEX cw_checkouts_payment_reference ON cw_checkouts (payment_reference)
    WHERE payment_reference IS NOT NULL;
-- Recovery looks for crashed attempts and expired sessions alike.
DROP INDEX cw_checkouts_stale;
CREATE INDEX cw_checkouts_stale ON cw_checkouts (lease_until)
    WHERE state IN ('in_progress', 'awaiting_payment');
