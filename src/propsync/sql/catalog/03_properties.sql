-- One row per (customer, property): its current value and when it was last updated.
CREATE VIEW properties AS
SELECT names.customer_id, current.property, current.value, current.update_ts, current.batch_id
FROM internal.current_properties AS current
JOIN internal.customer_names AS names USING (customer_key)
