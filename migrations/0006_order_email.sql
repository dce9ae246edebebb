-- Orders by contact email (issue #12): "order number" conditions count a
-- guest's earlier orders, and a customer's guest orders, by email.
-- Emails are stored as the engine normalises them (trimmed, lower case).
ALTER TABLE cw_orders ADD COLUMN email text;
UPDATE cw_orders SET email = doc->>'email' WHERE doc->>'email' IS NOT NULL;
CREATE INDEX cw_orders_email ON cw_orders (email) WHERE email IS NOT NULL;
