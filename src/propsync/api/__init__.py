"""The HTTP service: tracking-API batches, customer GET/PATCH and the profile page."""
