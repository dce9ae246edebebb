-- Product listing and search (issue #16): filters by category (with its
-- subcategories, kept in the summary), collection, tag and status through
-- one GIN index on the summary; title words through a full-text index on
-- the title split into lower-case letters and digits (as the engine splits
-- them); SKU prefixes through a pattern index; the title order in byte order
-- ("C"), the same in every locale and as the in-memory store.
CREATE INDEX cw_products_summary ON cw_products USING gin (summary jsonb_path_ops);
CREATE INDEX cw_products_title_words ON cw_products USING gin
    (to_tsvector('simple', regexp_replace(lower(summary->>'title'), '[^[:alnum:]]+', ' ', 'g')));
CREATE INDEX cw_products_title_order ON cw_products ((summary->>'title') COLLATE "C", id);
CREATE INDEX cw_variants_sku_prefix ON cw_variants (sku text_pattern_ops);

-- What only listings read, in a column of its own so that pricing, which
-- reads the summary for every cart line, does not carry it: every
-- variant's price by currency (a price range reads it without joining the
-- variants) and every variant's SKU. Existing products get it.
ALTER TABLE cw_products ADD COLUMN search jsonb NOT NULL DEFAULT '{}';
UPDATE cw_products p SET search = jsonb_build_object(
    'prices', coalesce((
        SELECT jsonb_object_agg(x.cur, x.amounts) FROM (
            SELECT pr.key AS cur, jsonb_agg(pr.value->'amount') AS amounts
            FROM cw_variants v, jsonb_each(v.doc->'prices') AS pr
            WHERE v.product_id = p.id
            GROUP BY pr.key) AS x), '{}'::jsonb),
    'skus', coalesce((
        SELECT jsonb_agg(v.sku ORDER BY v.sku) FROM cw_variants v WHERE v.product_id = p.id),
        '[]'::jsonb));
