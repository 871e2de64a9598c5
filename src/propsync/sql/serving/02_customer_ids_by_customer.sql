-- Read index of the serving copies: a customer's ids, and an internal id as a reference
-- (sql/read/customer_ids.sql, sql/read/resolve_internal_id.sql).
CREATE INDEX IF NOT EXISTS customer_ids_by_customer ON customer_ids (customer_id)
