-- Winners of the batch's own step stored with the same update time (winning_batch_properties.sql):
-- only when there are any does drop_tied_losers.sql compare their values.
SELECT count(*) FROM winning_properties WHERE tied
