-- Every customer ever created, merged-away ones included: its key (what the files name it by) and
-- its internal id (the text readers see). The batch that creates a customer writes its row once;
-- a new base carries them all.
CREATE VIEW internal.customer_names AS
SELECT customer_key, value AS customer_id
FROM internal.rows
WHERE kind = 'customer'
