-- Read index of the published copy (built by Warehouse.publish, never kept in work.duckdb):
-- resolve ID_TYPE:ID_VALUE to its customer (sql/read/resolve_external_id.sql).
CREATE INDEX IF NOT EXISTS customer_ids_by_value ON customer_ids (id_value)
