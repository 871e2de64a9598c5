-- A batch whose rows carry one id each merges no customers (merge_keys.sql and the run read it).
CREATE OR REPLACE TEMP TABLE merges (
    old_customer_id VARCHAR,
    customer_id     VARCHAR
)
