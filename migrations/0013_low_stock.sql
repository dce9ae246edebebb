-- Low-stock alerts (issue #16): a row while a variant is below its
-- threshold, so each crossing is announced once (the event is written in
-- the same statement that adds or removes the row).
CREATE TABLE cw_low_stock (
    variant_id uuid PRIMARY KEY
);
