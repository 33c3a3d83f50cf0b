"""Request and response bodies of the auth and users routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.shared.http import SafeLine, example
from app.shared.security import Role


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterRequest(Strict):
    model_config = example(
        {
            "username": "steve",
            "email": "steve@example.com",
            "password": "Correct-Horse-7",
            "full_name": "Steve",
        }
    )

    username: SafeLine = Field(min_length=1, max_length=200, examples=["steve"])
    email: SafeLine = Field(min_length=3, max_length=320, examples=["steve@example.com"])
    password: str = Field(min_length=1, max_length=1024)
    full_name: SafeLine | None = Field(default=None, max_length=1024)


class LoginRequest(Strict):
    model_config = example({"username": "steve", "password": "Correct-Horse-7"})

    username: SafeLine = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(Strict):
    model_config = example({"refresh_token": "the refresh_token of your last login or refresh"})

    refresh_token: str = Field(min_length=1, max_length=4096)


class UpdateMeRequest(Strict):
    model_config = example({"full_name": "Steve the Builder"})

    email: SafeLine | None = Field(default=None, min_length=3, max_length=320)
    full_name: SafeLine | None = Field(default=None, max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str | None = Field(default=None, max_length=1024)


class RoleRequest(Strict):
    model_config = example({"role": "operator"})

    role: Role = Field(strict=False, description="admin, operator or user")


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int
    refresh_expires_in: int


class UserResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    is_approved: bool
    created_at: datetime
    last_login_at: datetime | None


class MeResponse(UserResponse):
    permissions: list[str]


class UserPage(BaseModel):
    items: list[UserResponse]
    total: int
    page: int
    limit: int
