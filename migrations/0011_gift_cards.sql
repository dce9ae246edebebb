-- Gift cards and store credit (issue #13). The card's document holds its
-- append-only ledger; `balance` mirrors the ledger's sum for a check that
-- no redemption ever overdraws, whatever the code does. Entries are posted
-- under the card's row lock.
CREATE TABLE cw_gift_cards (
    id          uuid PRIMARY KEY,
    code_hash   text UNIQUE,
    customer_id uuid,
    currency    text NOT NULL,
    balance     numeric NOT NULL CHECK (balance >= 0),
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    doc         jsonb NOT NULL
);
CREATE INDEX cw_gift_cards_customer ON cw_gift_cards (customer_id, created_at, id)
    WHERE customer_id IS NOT NULL;
-- What a checkout attempt redeemed, for recovery.
CREATE INDEX cw_gift_cards_entries ON cw_gift_cards USING gin ((doc -> 'entries') jsonb_path_ops);
