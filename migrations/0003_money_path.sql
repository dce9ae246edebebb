-- The money-path protocol: orders with a payment operation or a
-- cancellation in flight, found by recovery through a partial index.
ALTER TABLE cw_orders ADD COLUMN pending_work boolean NOT NULL DEFAULT false;
CREATE INDEX cw_orders_pending_work ON cw_orders (id DESC) WHERE pending_work;
