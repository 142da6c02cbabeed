"""Programs and Events: an example department of eCitizen Passport."""
