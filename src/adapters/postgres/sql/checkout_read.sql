-- Checkout's read (`PgStore::cart_for_pricing`): the cart and everything
-- pricing needs, in one round trip. Rows of four kinds, told apart by
-- `kind`: 0 a variant's catalog entry and stock locations, 1 a coupon, 2 the
-- pricing version, 3 the cart. Shared with the checkout bench.
WITH c AS (SELECT active, version, doc FROM cw_carts WHERE id = $1)
SELECT 0 AS kind, v.doc AS variant,
       (SELECT p.summary FROM cw_products p WHERE p.id = v.product_id) AS summary,
       NULL::text AS code, NULL::uuid AS promotion_id, NULL::bigint AS max_uses,
       NULL::uuid[] AS more_promotions, NULL::bigint AS version,
       NULL::boolean AS active, NULL::jsonb AS doc,
       (SELECT array_agg(s.location_id) FROM cw_stock s
         WHERE s.variant_id = v.id) AS stock_locations
FROM cw_variants v
WHERE v.id = ANY (array(SELECT (l->>'variant_id')::uuid
                          FROM c, jsonb_array_elements(c.doc->'lines') AS l)
                  || $2::uuid[])
UNION ALL
SELECT 1, NULL, NULL, code, promotion_id, max_uses, more_promotions, NULL, NULL, NULL, NULL
FROM cw_coupons
WHERE code = ANY (array(SELECT jsonb_array_elements_text(c.doc->'coupon_codes') FROM c))
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, version, NULL, NULL, NULL FROM cw_pricing_version
UNION ALL
SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, version, active, doc, NULL FROM c
