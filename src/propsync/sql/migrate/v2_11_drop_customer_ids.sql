DROP TABLE customer_ids
