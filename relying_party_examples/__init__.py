"""Example department applications that sign residents in with eCitizen Passport."""
