"""The groups context's application: commands, queries and their handlers."""
