-- Great Expectations results per batch, stage and suite (written by the orchestration).
CREATE TABLE IF NOT EXISTS quality_results (
    batch_id         VARCHAR NOT NULL,
    stage            VARCHAR NOT NULL,   -- staged | merged
    suite            VARCHAR NOT NULL,
    check_name       VARCHAR,
    expectation      VARCHAR NOT NULL,
    column_name      VARCHAR,
    success          BOOLEAN NOT NULL,
    element_count    BIGINT,
    unexpected_count BIGINT,
    observed         VARCHAR,            -- JSON: observed value and first unexpected values
    report           VARCHAR,            -- the Data Docs page of the run that produced the row
    recorded_at_us   BIGINT NOT NULL
)
