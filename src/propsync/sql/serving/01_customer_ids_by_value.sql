-- Read index of the HTTP service's serving copies (store/serving.py; never in work.duckdb or in
-- the published versions):
-- resolve ID_TYPE:ID_VALUE to its customer (sql/read/resolve_external_id.sql).
CREATE INDEX IF NOT EXISTS customer_ids_by_value ON customer_ids (id_value)
