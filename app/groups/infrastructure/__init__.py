"""The groups context's infrastructure: tables and repositories, Redis, processes, storage."""
