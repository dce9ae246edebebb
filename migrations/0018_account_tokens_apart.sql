-- Account tokens leave the customer row (issue #33).
--
-- 1. Asking for a password reset must cost the same whether the email has
--    an account or not: the request now records a token either way, in one
--    INSERT — under a decoy id no account has when the email is unknown —
--    instead of rewriting the customer row only when the account exists
--    (seen from outside: a median of 300 µs for a known email, 80 µs for an
--    unknown one). Every request inserts a row; the newest of an account
--    and purpose is the live one; maintenance prunes expired rows.
-- 2. Using a token is one transaction under the customer's row lock that
--    counts a wrong secret (attempts + 1) or uses the token up and changes
--    the customer: concurrent wrong guesses are all counted (they used to
--    lose a version check and go uncounted).
-- 3. A reset token keeps a fingerprint of the password it was issued under
--    (the hex SHA-256 of its PHC string): once the password changes, it is
--    void. Before, changing the password removed it from the row.
CREATE TABLE cw_account_tokens (
    seq           bigserial PRIMARY KEY,
    customer_id   uuid NOT NULL,
    purpose       text NOT NULL
                  CHECK (purpose IN ('password_reset', 'email_verification', 'email_change')),
    hash          text NOT NULL,
    expires_at    timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    new_email     text,
    password_mark text,
    issued_at     timestamptz NOT NULL
);
CREATE INDEX cw_account_tokens_newest ON cw_account_tokens (customer_id, purpose, seq DESC);
CREATE INDEX cw_account_tokens_expiry ON cw_account_tokens (expires_at);

-- The tokens held in customer rows move over, each issued under the
-- password the account has now.
INSERT INTO cw_account_tokens
    (customer_id, purpose, hash, expires_at, attempts, new_email, password_mark, issued_at)
SELECT c.id, t->>'purpose', t->>'hash', (t->>'expires_at')::timestamptz,
       coalesce((t->>'attempts')::integer, 0), t->>'new_email',
       encode(sha256(convert_to(coalesce(c.password_hash, ''), 'UTF8')), 'hex'),
       now()
FROM cw_customers c, jsonb_array_elements(c.tokens) t;

ALTER TABLE cw_customers DROP COLUMN tokens;
