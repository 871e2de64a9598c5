-- Every known customer id and the internal id of the customer that owns it now.
CREATE VIEW customer_ids AS
SELECT ids.id_type, ids.id_value, names.customer_id, ids.batch_id
FROM internal.customer_id_keys AS ids
JOIN internal.customer_names AS names USING (customer_key)
