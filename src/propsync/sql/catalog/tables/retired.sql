-- Files a compaction replaced, kept for readers of older catalogs until the retention passes.
CREATE TABLE internal.retired (
    path          VARCHAR NOT NULL,
    retired_at_us BIGINT  NOT NULL
)
