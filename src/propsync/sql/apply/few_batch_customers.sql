-- Whether the batch's customers are at most one in 8 of those stored (the stored count from the
-- catalog, without a scan): stored_of_few_customers.sql then reads the batch's stored rows faster.
SELECT (SELECT count(*) FROM batch_customers) * 8 <= coalesce((
    SELECT estimated_size
    FROM duckdb_tables()
    WHERE database_name = current_database()
        AND schema_name = 'main'
        AND table_name = 'customer_keys'
), 0) AS few
