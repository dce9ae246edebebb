-- Password-reset and email-verification tokens (issue #16): hashes only,
-- beside the customer document like the password hash, never inside it.
ALTER TABLE cw_customers ADD COLUMN tokens jsonb NOT NULL DEFAULT '[]';
