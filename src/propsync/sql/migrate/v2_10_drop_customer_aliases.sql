DROP TABLE customer_aliases
