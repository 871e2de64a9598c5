-- Keys of customers (customer_keys.customer_key); never reused, gaps are harmless.
CREATE SEQUENCE IF NOT EXISTS customer_key_seq START 1
