-- The properties that merged customers handed to their survivors (winning_properties of the
-- merge step), kept for the batch's run file: the batch's own step replaces winning_properties.
CREATE OR REPLACE TEMP TABLE merged_winners AS
SELECT customer_key, property_id, value, update_ts, batch_id
FROM winning_properties
