-- The stored rows a small batch's winners beat (retire_beaten_rows.sql deletes them by row id; the
-- audit, audit/02_stored_rows_of_batch.sql, counts on exactly these being gone).
SELECT count(DISTINCT stored_row) AS beaten
FROM winning_properties
