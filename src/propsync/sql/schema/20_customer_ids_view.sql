-- Every known customer id and the internal id of the customer that owns it: id_keys with the
-- customer's text id. Readers and analysts query this; the writer joins the keyed tables.
CREATE OR REPLACE VIEW customer_ids AS
SELECT id_keys.id_type, id_keys.id_value, customer_keys.customer_id, id_keys.batch_id
FROM id_keys
JOIN customer_keys USING (customer_key)
