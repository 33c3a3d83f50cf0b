"""The backups context's infrastructure: tables and repositories, Redis, processes, storage."""
