"""HTTP routes of the users context: /api/v2/auth, /api/v2/users and /api/v2/admin/users."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.shared.dependencies import BusDep, CurrentPrincipal, rate_limit, require
from app.shared.domain import Forbidden
from app.shared.http import SafeLine
from app.shared.openapi import problems
from app.shared.ratelimit import RateLimiter, username_key
from app.shared.security import Permission, Principal, Role
from app.users.api.schemas import (
    LoginRequest,
    MeResponse,
    RefreshRequest,
    RegisterRequest,
    RoleRequest,
    TokenResponse,
    UpdateMeRequest,
    UserPage,
    UserResponse,
)
from app.users.application.messages import (
    ApproveUser,
    ChangeUserRole,
    DeactivateUser,
    GetUser,
    ListUsers,
    LogIn,
    LogOut,
    ReactivateUser,
    RefreshSession,
    RegisterUser,
    UpdateProfile,
)
from app.users.domain.ports import IssuedTokens, UserListFilter

auth_router = APIRouter(prefix="/api/v2/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/v2/users", tags=["users"])
admin_router = APIRouter(prefix="/api/v2/admin", tags=["admin"])


def _tokens(issued: IssuedTokens) -> TokenResponse:
    return TokenResponse(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        refresh_expires_in=issued.refresh_expires_in,
    )


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(rate_limit("register"))],
    summary="Register; the first user becomes an approved admin, later users wait for approval",
    responses=problems({409: "the username or email is already registered"}),
)
async def register(body: RegisterRequest, bus: BusDep) -> UserResponse:
    user_id = await bus.handle(
        RegisterUser(
            username=body.username,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
        )
    )
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))


@auth_router.post(
    "/login",
    dependencies=[Depends(rate_limit("login"))],
    responses=problems(
        {401: "wrong username or password, or the account is not approved or deactivated"}
    ),
)
async def login(body: LoginRequest, request: Request, bus: BusDep) -> TokenResponse:
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is not None:
        await limiter.hit("login-username", username_key(body.username))
    return _tokens(await bus.handle(LogIn(username=body.username, password=body.password)))


@auth_router.post(
    "/refresh",
    dependencies=[Depends(rate_limit("refresh"))],
    summary="Rotate a refresh token; reusing a spent one revokes the whole session",
    responses=problems({401: "the refresh token is unknown, spent, revoked or expired"}),
)
async def refresh(body: RefreshRequest, bus: BusDep) -> TokenResponse:
    return _tokens(await bus.handle(RefreshSession(refresh_token=body.refresh_token)))


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentPrincipal, bus: BusDep) -> Response:
    await bus.handle(LogOut(user_id=principal.user_id, session_id=principal.session_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _me(bus: BusDep, principal: Principal) -> MeResponse:
    view = await bus.handle(GetUser(user_id=principal.user_id))
    return MeResponse.model_validate(
        {
            **UserResponse.model_validate(view).model_dump(),
            "permissions": sorted(principal.permissions),
        }
    )


@users_router.get("/me")
async def get_me(principal: CurrentPrincipal, bus: BusDep) -> MeResponse:
    return await _me(bus, principal)


@users_router.put(
    "/me",
    summary="Update your email, full name or password",
    responses=problems(
        {
            403: "a new password needs the right current_password",
            409: "the email is already registered",
        }
    ),
)
async def update_me(body: UpdateMeRequest, principal: CurrentPrincipal, bus: BusDep) -> MeResponse:
    await bus.handle(
        UpdateProfile(
            user_id=principal.user_id,
            session_id=principal.session_id,
            email=body.email,
            full_name=body.full_name,
            current_password=body.current_password,
            new_password=body.new_password,
        )
    )
    return await _me(bus, principal)


Search = Annotated[SafeLine | None, Query(max_length=100, description="part of username or email")]


async def user_filter(
    role: Role | None = None,
    is_approved: bool | None = None,
    is_active: bool | None = None,
    search: Search = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UserListFilter:
    return UserListFilter(
        role=role,
        is_approved=is_approved,
        is_active=is_active,
        search=search,
        page=page,
        limit=limit,
    )


UserFilter = Annotated[UserListFilter, Depends(user_filter)]


async def _list(bus: BusDep, filter: UserListFilter) -> UserPage:
    result = await bus.handle(ListUsers(filter=filter))
    return UserPage(
        items=[UserResponse.model_validate(item) for item in result.items],
        total=result.total,
        page=result.page,
        limit=result.limit,
    )


@users_router.get("/", dependencies=[Depends(require(Permission.USER_READ))])
async def list_users(bus: BusDep, filter: UserFilter) -> UserPage:
    return await _list(bus, filter)


@admin_router.get("/users", dependencies=[Depends(require(Permission.ADMIN_ALL))])
async def admin_list_users(bus: BusDep, filter: UserFilter) -> UserPage:
    return await _list(bus, filter)


@users_router.get("/{user_id}")
async def get_user(user_id: uuid.UUID, principal: CurrentPrincipal, bus: BusDep) -> UserResponse:
    if user_id != principal.user_id and not principal.has(Permission.USER_READ):
        raise Forbidden("this action needs the user:read permission")
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))


UserWriter = Annotated[Principal, Depends(require(Permission.USER_WRITE))]


@users_router.patch(
    "/{user_id}/approve",
    responses=problems(
        {403: "you cannot approve your own account", 409: "the user is already approved"}
    ),
)
async def approve_user(user_id: uuid.UUID, admin: UserWriter, bus: BusDep) -> UserResponse:
    await bus.handle(ApproveUser(user_id=user_id, approved_by=admin.user_id))
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))


@users_router.patch(
    "/{user_id}/role",
    responses=problems({409: "the user already has this role, or is the last active admin"}),
)
async def change_role(
    user_id: uuid.UUID, body: RoleRequest, admin: UserWriter, bus: BusDep
) -> UserResponse:
    await bus.handle(ChangeUserRole(user_id=user_id, role=body.role, changed_by=admin.user_id))
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))


@users_router.patch(
    "/{user_id}/deactivate",
    responses=problems(
        {
            403: "you cannot deactivate your own account",
            409: "the user is already deactivated, or is the last active admin",
        }
    ),
)
async def deactivate_user(user_id: uuid.UUID, admin: UserWriter, bus: BusDep) -> UserResponse:
    await bus.handle(DeactivateUser(user_id=user_id, deactivated_by=admin.user_id))
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))


@users_router.patch(
    "/{user_id}/reactivate", responses=problems({409: "the user is already active"})
)
async def reactivate_user(user_id: uuid.UUID, admin: UserWriter, bus: BusDep) -> UserResponse:
    await bus.handle(ReactivateUser(user_id=user_id, reactivated_by=admin.user_id))
    return UserResponse.model_validate(await bus.handle(GetUser(user_id=user_id)))
