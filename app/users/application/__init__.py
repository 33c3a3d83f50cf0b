"""The users context's application: commands, queries and their handlers."""
