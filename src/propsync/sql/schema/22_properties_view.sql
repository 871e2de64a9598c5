-- One row per (customer, property) with the customer's text id and the property's name.
CREATE OR REPLACE VIEW properties AS
SELECT
    customer_keys.customer_id,
    property_names.property,
    property_values.value,
    property_values.update_ts,
    property_values.batch_id
FROM property_values
JOIN customer_keys USING (customer_key)
JOIN property_names USING (property_id)
