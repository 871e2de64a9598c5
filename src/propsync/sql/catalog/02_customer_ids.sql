-- Every known customer id and the internal id of the customer that owns it now.
CREATE OR REPLACE VIEW customer_ids AS
SELECT id_type, id_value, customer_id, batch_id
FROM internal.customer_ids
