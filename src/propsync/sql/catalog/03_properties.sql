-- One row per (customer, property): its current value and when it was last updated.
CREATE OR REPLACE VIEW properties AS
SELECT customer_id, property, value, update_ts, batch_id
FROM internal.current_properties
