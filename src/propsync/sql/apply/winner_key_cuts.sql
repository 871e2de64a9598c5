-- Customer keys that cut the batch's winners into ranges of about equal size ($quantiles: the
-- fractions at the cuts; approximate, which is all the ranges need, store/apply.py).
SELECT approx_quantile(customer_key, $quantiles::FLOAT[])
FROM winning_properties
