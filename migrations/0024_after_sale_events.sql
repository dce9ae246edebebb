-- A new event kind (issue #29): after-sale work on an order moved on (a
-- return request made, approved, rejected, received, refunded or called
-- off). Its aggregate, as `EventKind::aggregate` derives it.
CREATE OR REPLACE FUNCTION cw_event_aggregate(kind jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind->>'type'
        WHEN 'order_placed' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_authorized' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_failed' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_action_required' THEN 'cart:' || (kind->>'cart_id')
        WHEN 'balance_changed' THEN 'gift_card:' || (kind->>'card_id')
        WHEN 'payment_captured' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_refunded' THEN 'order:' || (kind->>'order_id')
        WHEN 'payment_voided' THEN 'order:' || (kind->>'order_id')
        WHEN 'order_shipped' THEN 'order:' || (kind->>'order_id')
        WHEN 'shipment_delivered' THEN 'order:' || (kind->>'order_id')
        WHEN 'items_returned' THEN 'order:' || (kind->>'order_id')
        WHEN 'after_sale' THEN 'order:' || (kind->>'order_id')
        WHEN 'order_cancelled' THEN 'order:' || (kind->>'order_id')
        WHEN 'customer_changed' THEN 'customer:' || (kind->>'customer_id')
        WHEN 'catalog_changed' THEN CASE kind->'change'->>'kind'
            WHEN 'product_created' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_updated' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_status_changed' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'product_deleted' THEN 'product:' || (kind->'change'->>'product_id')
            WHEN 'category_changed' THEN 'category:' || (kind->'change'->>'category_id')
            WHEN 'category_deleted' THEN 'category:' || (kind->'change'->>'category_id')
            WHEN 'collection_changed' THEN 'collection:' || (kind->'change'->>'collection_id')
            WHEN 'collection_deleted' THEN 'collection:' || (kind->'change'->>'collection_id')
            WHEN 'channel_changed' THEN 'channel:' || (kind->'change'->>'channel_id')
            END
        WHEN 'promotion_changed' THEN CASE kind->'change'->>'kind'
            WHEN 'saved' THEN 'promotion:' || (kind->'change'->>'promotion_id')
            WHEN 'coupons_created' THEN 'promotion:' || (kind->'change'->>'promotion_id')
            WHEN 'price_list_saved' THEN 'price_list:' || (kind->'change'->>'price_list_id')
            END
        WHEN 'stock_changed' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'low_stock' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'stock_replenished' THEN 'variant:' || (kind->>'variant_id')
        WHEN 'admin_change' THEN 'shop'
    END
$$;
