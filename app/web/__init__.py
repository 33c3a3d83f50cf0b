"""The web dashboard: plain ES modules and CSS served by the API, a client of its public API."""

from app.web.routes import install_dashboard

__all__ = ["install_dashboard"]
