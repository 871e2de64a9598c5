-- The quarantine: rows and cells a batch refused, with the raw value and the reason.
CREATE VIEW rejections AS
SELECT unnest(rejection)
FROM (
    SELECT unnest(rejections) AS rejection
    FROM internal.batch_records
)
