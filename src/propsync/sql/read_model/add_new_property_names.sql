-- The staged rows' property names without a key get the next ones.
WITH new_names AS (
    SELECT DISTINCT r.property
    FROM run_properties AS r
    WHERE NOT EXISTS (SELECT 1 FROM property_names AS n WHERE n.property = r.property)
)
INSERT INTO property_names (property)
SELECT property FROM new_names ORDER BY property
