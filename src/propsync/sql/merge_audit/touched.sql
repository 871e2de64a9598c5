-- The customers a batch touched: those whose properties, aliases or ids it stored. The state of
-- every other customer passed the audit of the batch that made it.
CREATE OR REPLACE TEMP TABLE audit_touched AS
SELECT customer_id FROM properties WHERE batch_id = $batch_id
UNION
SELECT customer_id FROM customer_aliases WHERE batch_id = $batch_id
UNION
SELECT customer_id FROM customer_ids WHERE batch_id = $batch_id
