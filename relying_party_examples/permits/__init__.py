"""City Permits: an example department of eCitizen Passport."""
