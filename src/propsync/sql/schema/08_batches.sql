-- Every batch the apply path has seen, applied or failed, with its counts.
CREATE TABLE IF NOT EXISTS batches (
    batch_id               VARCHAR NOT NULL,
    kind                   VARCHAR NOT NULL,
    source                 VARCHAR,
    status                 VARCHAR NOT NULL,
    message                VARCHAR,
    started_at_us          BIGINT,
    applied_at_us          BIGINT NOT NULL,
    rows_read              BIGINT NOT NULL,
    cells_incoming         BIGINT NOT NULL,
    properties_applied     BIGINT NOT NULL,
    properties_stale       BIGINT NOT NULL,
    rows_rejected          BIGINT NOT NULL,
    cells_rejected         BIGINT NOT NULL,
    default_timestamp_rows BIGINT NOT NULL,
    customers_created      BIGINT NOT NULL,
    customers_merged       BIGINT NOT NULL,
    version                BIGINT
)
