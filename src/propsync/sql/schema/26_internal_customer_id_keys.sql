CREATE OR REPLACE VIEW internal.customer_id_keys AS
SELECT id_type, id_value, customer_key, batch_id
FROM id_keys
