"""City Billing, an example department of eCitizen Passport."""
