"""Errors of the servers context, each with the HTTP status the API answers with."""

from __future__ import annotations

from app.shared.domain import Conflict, DomainError, InvalidInput, NotFound


class ServerNotFound(NotFound):
    slug = "server-not-found"


class UnknownVersion(InvalidInput):
    slug = "unknown-version"
    title = "Unknown version"


class DownloadFailed(DomainError):
    """An upstream jar or manifest could not be fetched, or its checksum or size did not match."""

    status = 502
    slug = "download-failed"
    title = "Download failed"


class JavaRuntimeMissing(InvalidInput):
    slug = "java-runtime-missing"
    title = "Java runtime missing"


class InvalidJar(InvalidInput):
    slug = "invalid-jar"
    title = "Invalid jar"


class JarTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Jar too large"


class PortUnavailable(Conflict):
    slug = "port-unavailable"
    title = "Port unavailable"


class InvalidTransition(Conflict):
    slug = "invalid-state"
    title = "Not possible in the server's current state"


class NodeNotFound(NotFound):
    slug = "node-not-found"


class MoveFailed(DomainError):
    """The copy of a server's directory on the target node is not what the source holds."""

    status = 502
    slug = "move-failed"
    title = "Move failed"
