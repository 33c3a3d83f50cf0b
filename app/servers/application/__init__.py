"""The servers context's application: commands, queries and their handlers."""
