"""Report a Problem: an example department of eCitizen Passport."""
