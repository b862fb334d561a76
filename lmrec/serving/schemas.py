"""Request and response bodies of the HTTP service (pydantic; they make the OpenAPI page)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScoredItem(BaseModel):
    item: str
    score: float
    title: str | None = None


class Ranking(BaseModel):
    version: str
    user: str | None = None
    items: list[ScoredItem]


class NewUserRequest(BaseModel):
    """A user the model has not seen: liked item ids (oldest first) and/or a profile text."""

    history: list[str] = Field(default_factory=list, description="liked item ids, oldest first")
    profile: str | None = Field(None, description="free text, e.g. 'likes space opera and robots'")
    k: int = Field(10, ge=1, le=1000)
    exclude_seen: bool = True


class RankRequest(BaseModel):
    """Re-rank an application's candidates for a known user, or for a history / profile."""

    user: str | None = None
    history: list[str] | None = None
    profile: str | None = None
    items: list[str] = Field(..., min_length=1, description="candidate item ids")


class Health(BaseModel):
    status: str
    model_id: str
    model_class: str
    version: str
    items: int
    users: int
    index: str
    uptime_seconds: float
    loaded_at: float


class ItemRecord(BaseModel):
    """An item: its id plus the text fields the model's template reads (extra fields allowed)."""

    model_config = ConfigDict(extra="allow")
    item: str = Field(..., min_length=1)


class ItemsRequest(BaseModel):
    items: list[ItemRecord] = Field(..., min_length=1)


class ItemsResponse(BaseModel):
    version: str
    added: list[str]
    updated: list[str]


class EventIn(BaseModel):
    user: str = Field(..., min_length=1)
    item: str = Field(..., min_length=1)
    type: str = Field("click", min_length=1, max_length=64)
    value: float = 1.0
    timestamp: float | None = Field(None, description="Unix seconds; the time of receipt when omitted")


class EventsRequest(BaseModel):
    events: list[EventIn] = Field(..., min_length=1)


class EventsResponse(BaseModel):
    stored: int
    first_id: int
    last_id: int


class ReloadRequest(BaseModel):
    version: str | None = Field(None, description="a version folder name; the store's CURRENT when omitted")


class ReloadResponse(BaseModel):
    previous: str
    version: str
    changed: bool


class ExplainResponse(BaseModel):
    version: str
    user: str
    item: str
    score: float
    method: str
    history: list[dict[str, Any]]
    fields: list[dict[str, Any]]


class HistoryResponse(BaseModel):
    user: str
    items: list[dict[str, Any]]
