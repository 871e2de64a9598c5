-- The keyed views a new base is written from (sql/compaction/fold_base.sql), under the names a
-- published catalog gives them (sql/catalog/internal/).
CREATE SCHEMA IF NOT EXISTS internal
