-- The batch's winners (winning_properties.sql or winning_batch_properties.sql).
SELECT count(*) FROM winning_properties
