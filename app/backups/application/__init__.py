"""The backups context's application: commands, queries and their handlers."""
