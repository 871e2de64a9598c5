CREATE OR REPLACE VIEW internal.current_properties AS
SELECT property_values.customer_key, property_names.property, property_values.value,
    property_values.update_ts, property_values.batch_id
FROM property_values
JOIN property_names USING (property_id)
