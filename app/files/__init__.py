"""The files context: a server's files with their edit history."""
