CREATE OR REPLACE VIEW internal.current_properties AS
SELECT customer_keys.customer_id, property_names.property, property_values.value,
    property_values.update_ts, property_values.batch_id, property_values.customer_key
FROM property_values
JOIN customer_keys USING (customer_key)
JOIN property_names USING (property_id)
