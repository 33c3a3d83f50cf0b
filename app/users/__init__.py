"""The users context: accounts, approval, roles and sessions."""
