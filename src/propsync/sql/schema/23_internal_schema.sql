-- The writer's tables as the keyed views a published catalog has (sql/catalog/internal/): a new
-- base is written from them (sql/compaction/fold_base.sql), and the documented views
-- (customer_ids, customer_aliases, properties: sql/catalog/0[1-3]_*.sql) are their projections.
CREATE SCHEMA IF NOT EXISTS internal
