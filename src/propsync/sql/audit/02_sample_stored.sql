-- Everything now stored for the audited customers: one scan of property_values for all the audits.
CREATE OR REPLACE TEMP TABLE audit_stored AS
WITH audited_customers AS (
    SELECT DISTINCT customer_key FROM audit_incoming
)

SELECT property_values.customer_key, property_values.property_id, property_values.value, property_values.update_ts
FROM property_values
SEMI JOIN audited_customers USING (customer_key)
