"""The files context's application: commands, queries and their handlers."""
