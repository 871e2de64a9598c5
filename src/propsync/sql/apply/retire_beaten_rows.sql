-- Newer wins, step 2 of 3, for a small batch: delete the stored rows its winners beat, by the row
-- ids stored_of_batch.sql found (a scan of the row ids only, instead of a join on the keys).
DELETE FROM property_values
WHERE rowid IN (
    SELECT stored_row
    FROM winning_properties
    WHERE stored_row IS NOT NULL
)
