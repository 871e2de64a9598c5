-- Newer wins, step 1 of 3, second half (see winning_batch_properties.sql): a tied row, stored
-- with the same update time, wins only if its canonical value text is greater. Run only when
-- there are tied rows; deleting keeps the other rows in their (customer) order.
DELETE FROM winning_properties AS incoming
USING property_values AS stored
WHERE incoming.tied
    AND stored.customer_key = incoming.customer_key
    AND stored.property_id = incoming.property_id
    AND newer_wins(incoming.update_ts, incoming.value, stored.update_ts, stored.value) IS NOT TRUE
