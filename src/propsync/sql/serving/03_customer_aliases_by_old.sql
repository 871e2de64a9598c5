-- Read index of the serving copies: the internal id of a merged-away customer to the survivor
-- (sql/read/resolve_internal_id.sql).
CREATE INDEX IF NOT EXISTS customer_aliases_by_old ON customer_aliases (old_customer_id)
