-- Newer wins, step 2 of 3, for a batch whose delete would pin too much memory (store/apply.py):
-- the stored rows that no winner beats, into the new table that replaces property_values. The
-- anti join streams the stored rows in about their order (the writer does not preserve insertion
-- order, so its two threads interleave row groups): at 1M x 10 a row group then spans a median
-- of 18.6k customer keys against 12.3k before, and a small batch's join still skips most of them.
-- 10M rows, 8.5M winners: 2.2-4.4 s, as the delete and its commit; under a 200MB memory limit it
-- spills and completes.
INSERT INTO property_values_next (customer_key, property_id, value, update_ts, batch_id)
SELECT stored.customer_key, stored.property_id, stored.value, stored.update_ts, stored.batch_id
FROM property_values AS stored
ANTI JOIN winning_properties AS incoming
    ON stored.customer_key = incoming.customer_key AND stored.property_id = incoming.property_id
