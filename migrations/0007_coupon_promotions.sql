-- One coupon code may unlock several promotions (issue #12): the further
-- promotions beside promotion_id, in order. Existing codes unlock one.
ALTER TABLE cw_coupons ADD COLUMN more_promotions uuid[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(more_promotions) < 20);
