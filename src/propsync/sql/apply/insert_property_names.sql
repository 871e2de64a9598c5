-- Names the batch's valid cells use ($names: those of the cells whose row resolved to a
-- customer, store/apply.py) that the dictionary lacks, each with a key drawn from
-- property_id_seq.
INSERT INTO property_names (property_id, property)
WITH used AS (
    SELECT DISTINCT unnest($names::VARCHAR[]) AS property
)

SELECT nextval('property_id_seq'), used.property
FROM used
ANTI JOIN property_names USING (property)
