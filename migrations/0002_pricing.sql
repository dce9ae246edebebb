-- Promotions, price lists and coupon codes.
--
-- Promotions and price lists are serde documents (the pricing core validates
-- them before they are saved). Every change to either bumps
-- cw_pricing_version, which engines poll to know when to recompile their
-- cached promotion index.

CREATE TABLE cw_promotions (
    id  uuid PRIMARY KEY,
    doc jsonb NOT NULL
);

CREATE TABLE cw_price_lists (
    id  uuid PRIMARY KEY,
    doc jsonb NOT NULL
);

CREATE TABLE cw_coupons (
    code         text PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 64),
    promotion_id uuid NOT NULL REFERENCES cw_promotions (id),
    max_uses     bigint CHECK (max_uses IS NULL OR max_uses > 0)
);

CREATE INDEX cw_coupons_promotion ON cw_coupons (promotion_id);

CREATE TABLE cw_pricing_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL CHECK (version >= 0)
);

INSERT INTO cw_pricing_version (singleton, version) VALUES (true, 0);
