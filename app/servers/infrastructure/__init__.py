"""The servers context's infrastructure: tables and repositories, Redis, processes, storage."""
