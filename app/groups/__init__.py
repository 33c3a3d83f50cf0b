"""The groups context: op and whitelist groups of players."""
