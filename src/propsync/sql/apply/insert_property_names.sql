-- Names the batch's valid cells use that the dictionary lacks, each with a key drawn from
-- property_id_seq.
INSERT INTO property_names (property_id, property)
WITH used AS (
    SELECT DISTINCT batch_cells.property
    FROM batch_cells
    SEMI JOIN row_customers USING (row_nr)
)

SELECT nextval('property_id_seq'), used.property
FROM used
ANTI JOIN property_names USING (property)
