"""The servers context's api: FastAPI routes, WebSockets and their schemas."""
