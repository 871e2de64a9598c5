-- The rows a table of work.duckdb stores, counting those deleted since the last checkpoint (DuckDB
-- keeps their vectors until then): from the catalog, without a scan. For property_values each
-- row's row id is below it, and DuckDB gives rows inserted by the open transaction row ids far
-- above it (from 2^55), so it also marks where a batch's inserts begin
-- (audit/02_stored_rows_of_batch.sql). 1 ms at 1M x 10, where count(*) or max(rowid) after
-- uncheckpointed deletes took 32-38 ms.
SELECT coalesce(max(estimated_size), 0) AS stored_rows
FROM duckdb_tables()
WHERE database_name = current_database()
    AND schema_name = 'main'
    AND table_name = $table
