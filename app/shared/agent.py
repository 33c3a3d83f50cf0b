"""The wire between the API and the node agents: short-lived tokens the API signs for one node,
server and operation; the client the API reaches an agent with; the guard an agent checks each
request with; and the errors both sides speak (a domain error on the node is the same domain
error in the API, so the user sees the problem the node found).

Agents live in the workers (app/agent.py); every context adds its own routes to them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from fastapi import Request
from jose import ExpiredSignatureError, JWTError, jwt
from redis.asyncio import Redis

from app.shared.domain import DomainError
from app.shared.nodes import node_key

ALGORITHM = "HS256"
ISSUER = "mcdash-api"
ANY_SERVER = "*"
_REPLAY_MAX = 200_000


class NodeUnavailable(DomainError):
    """The server's node cannot be reached now: its worker is down or not answering."""

    status = 503
    slug = "node-unavailable"
    title = "Node unavailable"


class NodeMisconfigured(DomainError):
    """The node refused the API's own token: the two do not share MCDASH_NODE_SECRET."""

    status = 503
    slug = "node-misconfigured"
    title = "Node misconfigured"


class AgentTokenInvalid(DomainError):
    status = 401
    slug = "node-token-invalid"
    title = "Invalid node token"


class AgentTokenForbidden(DomainError):
    status = 403
    slug = "node-token-forbidden"
    title = "Node token not valid here"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows: one operation on one server (or on none, `ANY_SERVER`)."""

    node: str
    op: str
    server: str


class NodeTokens:
    """HS256 tokens naming node, server and operation, living `ttl` seconds, used once."""

    def __init__(self, secret: str, *, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._ttl = ttl
        self._clock = clock
        self._seen: dict[str, float] = {}

    def mint(self, node: str, op: str, server: uuid.UUID | str | None = None) -> str:
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "aud": f"node:{node}",
            "sub": str(server) if server is not None else ANY_SERVER,
            "op": op,
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
        }
        return str(jwt.encode(claims, self._secret, algorithm=ALGORITHM))

    def verify(self, token: str, *, node: str, op: str, server: str) -> Grant:
        """401 for a forged, expired, replayed or other node's token; 403 for another server
        or operation than the one it names."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=f"node:{node}",
                issuer=ISSUER,
                options={"require_exp": True, "require_jti": True, "leeway": 5},
            )
        except ExpiredSignatureError:
            raise AgentTokenInvalid("the node token has expired") from None
        except JWTError as exc:
            raise AgentTokenInvalid(f"the node token is not valid for node {node}: {exc}") from None
        granted = Grant(node=node, op=str(claims.get("op")), server=str(claims.get("sub")))
        if granted.op != op:
            raise AgentTokenForbidden(f"the node token is for {granted.op}, not {op}")
        if granted.server != server:
            raise AgentTokenForbidden("the node token is for another server")
        self._once(str(claims["jti"]), float(claims["exp"]))
        return granted

    def _once(self, jti: str, expires: float) -> None:
        now = self._clock()
        if jti in self._seen:
            raise AgentTokenInvalid("the node token was already used")
        if len(self._seen) >= _REPLAY_MAX:
            self._seen = {key: exp for key, exp in self._seen.items() if exp > now}
            if len(self._seen) >= _REPLAY_MAX:
                raise AgentTokenInvalid("too many node tokens in flight; try again")
        self._seen[jti] = expires + 5


def guard(tokens: NodeTokens, node: str, op: str) -> Callable[[Request], Any]:
    """A FastAPI dependency: the request carries a token for `op` on its `server_id`."""

    async def check(request: Request) -> Grant:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AgentTokenInvalid("a node token is required (Authorization: Bearer ...)")
        server = request.path_params.get("server_id", ANY_SERVER)
        return tokens.verify(token.strip(), node=node, op=op, server=str(server))

    return check


class NodeDirectory(Protocol):
    async def url(self, node: str) -> str | None:
        """Where the node's agent listens, as its worker advertises it; None when offline."""
        ...


class RedisNodeDirectory:
    """The `url` of the node record in Redis, remembered for a second or two."""

    def __init__(self, redis: Redis, *, ttl: float = 2.0) -> None:
        self._redis = redis
        self._ttl = ttl
        self._known: dict[str, tuple[float, str | None]] = {}

    async def url(self, node: str) -> str | None:
        now = time.monotonic()
        known = self._known.get(node)
        if known is not None and known[0] > now:
            return known[1]
        url = await self._redis.hget(node_key(node), "url")
        self._known[node] = (now + self._ttl, str(url) if url else None)
        return self._known[node][1]


class StaticNodeDirectory:
    def __init__(self, urls: Mapping[str, str]) -> None:
        self.urls = dict(urls)

    async def url(self, node: str) -> str | None:
        return self.urls.get(node)


_UNREACHABLE = (httpx.TransportError,)


class AgentClient:
    """Calls node agents with a fresh token per request and short timeouts; an agent that is
    down or silent is a 503 naming the node, never a hang."""

    def __init__(
        self,
        directory: NodeDirectory,
        tokens: NodeTokens,
        *,
        timeout: float,
        connect_timeout: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.directory = directory
        self._tokens = tokens
        self._timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._http = httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    def _longer(self, read: float) -> httpx.Timeout:
        base = self._timeout
        return httpx.Timeout(connect=base.connect, read=read, write=read, pool=base.pool)

    async def _request(
        self,
        node: str,
        op: str,
        method: str,
        path: str,
        *,
        server: uuid.UUID | None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Request:
        base = await self.directory.url(node)
        if base is None:
            raise NodeUnavailable(f"node {node} is offline: its worker is not running", node=node)
        token = self._tokens.mint(node, op, server)
        return self._http.build_request(
            method,
            f"{base.rstrip('/')}{path}",
            json=json,
            params=params,
            content=content,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=self._timeout if read_timeout is None else self._longer(read_timeout),
        )

    async def call(
        self,
        node: str,
        op: str,
        method: str,
        path: str,
        *,
        server: uuid.UUID | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        """One request, read whole; the node's domain errors are raised here as they were.
        `read_timeout` is for a node that works a while before it answers (a digest)."""
        request = await self._request(
            node,
            op,
            method,
            path,
            server=server,
            json=json,
            params=params,
            content=content,
            headers=headers,
            read_timeout=read_timeout,
        )
        try:
            response = await self._http.send(request)
        except _UNREACHABLE as exc:
            raise _unreachable(node, exc) from exc
        if response.is_error:
            raise relayed_error(node, response.status_code, _problem(response))
        return response

    @asynccontextmanager
    async def stream(
        self,
        node: str,
        op: str,
        method: str,
        path: str,
        *,
        server: uuid.UUID | None = None,
        params: Mapping[str, str | int] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A response whose body is read as it arrives; errors are raised before it is."""
        request = await self._request(
            node, op, method, path, server=server, params=params, content=content
        )
        try:
            response = await self._http.send(request, stream=True)
        except _UNREACHABLE as exc:
            raise _unreachable(node, exc) from exc
        try:
            if response.is_error:
                await response.aread()
                raise relayed_error(node, response.status_code, _problem(response))
            yield response
        except _UNREACHABLE as exc:
            raise _unreachable(node, exc) from exc
        finally:
            await response.aclose()

    async def download(
        self,
        node: str,
        op: str,
        path: str,
        *,
        server: uuid.UUID | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[httpx.Response, AsyncIterator[bytes]]:
        """A GET whose headers are read now and whose body is read as it is iterated (the
        request stays open until then)."""
        stack = AsyncExitStack()
        response = await stack.enter_async_context(
            self.stream(node, op, "GET", path, server=server, params=params)
        )

        async def chunks() -> AsyncIterator[bytes]:
            async with stack:
                async for chunk in body_chunks(response, node):
                    yield chunk

        return response, chunks()


async def body_chunks(response: httpx.Response, node: str) -> AsyncIterator[bytes]:
    """The body of a streamed response; the node going away midway is a NodeUnavailable."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except _UNREACHABLE as exc:
        raise _unreachable(node, exc) from exc


def _unreachable(node: str, exc: Exception) -> NodeUnavailable:
    reason = type(exc).__name__
    return NodeUnavailable(
        f"node {node} did not answer ({reason}); try again when its worker is back", node=node
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def relayed_error(node: str, status: int, body: Mapping[str, Any]) -> DomainError:
    """The node's problem as the domain error it was raised as on the node."""
    slug = str(body.get("type", "")).removeprefix("urn:mcdash:problem:")
    detail = str(body.get("detail") or f"node {node} answered {status}")
    if slug in (AgentTokenInvalid.slug, AgentTokenForbidden.slug):
        return NodeMisconfigured(
            f"node {node} refused the API's token ({detail}); the API and the node must share"
            " MCDASH_NODE_SECRET",
            node=node,
        )
    if status >= 500 or not slug:
        return NodeUnavailable(f"node {node} failed: {detail}", node=node)
    extra = {
        key: value
        for key, value in body.items()
        if key not in ("type", "title", "status", "detail", "instance", "request_id")
    }
    return _error_class(slug, status)(detail, **extra)


def _error_class(slug: str, status: int) -> type[DomainError]:
    matches = {cls for cls in _subclasses(DomainError) if cls.slug == slug and cls.status == status}
    if len(matches) == 1:
        return matches.pop()
    return _relayed_class(slug, status)


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    found: list[type[DomainError]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


_RELAYED: dict[tuple[str, int], type[DomainError]] = {}


def _relayed_class(slug: str, status: int) -> type[DomainError]:
    if (slug, status) not in _RELAYED:

        class Relayed(DomainError):
            pass

        Relayed.status, Relayed.slug = status, slug
        Relayed.title = slug.replace("-", " ").capitalize()
        _RELAYED[(slug, status)] = Relayed
    return _RELAYED[(slug, status)]
