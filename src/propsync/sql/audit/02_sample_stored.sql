-- Everything now stored for the audited customers: one scan of properties for all the audits.
CREATE OR REPLACE TEMP TABLE audit_stored AS
WITH audited_customers AS (
    SELECT DISTINCT customer_id FROM audit_incoming
)

SELECT properties.customer_id, properties.property, properties.value, properties.update_ts
FROM properties
SEMI JOIN audited_customers USING (customer_id)
