"""Request and response bodies of the HTTP service (pydantic; they make the OpenAPI page).

Every string, list and number a client sends has a bound (:data:`MAX_ID`, :data:`MAX_TEXT`,
:data:`MAX_LIST`, :data:`MAX_FIELDS`, :data:`MAX_BATCH`; numbers finite; strings valid Unicode): a
request is answered 422 naming the field before anything is looked up or encoded. Texts are cut
further before tokenising (``--max-text``). The checks run inside pydantic-core (no Python
validator per list entry), since FastAPI validates bodies on the event loop: a full 1 MB body
costs tens of milliseconds there, not hundreds.
"""
from __future__ import annotations

from typing import Annotated, Any

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_ID = 256  # characters of a user or item id (and of an item field's name)
MAX_TEXT = 10_000  # characters of a profile or of one item field
MAX_LIST = 1000  # ids in a history or a candidate list
MAX_FIELDS = 32  # text fields of one item record
MAX_BATCH = 10_000  # events or items in one request (``--max-batch`` may lower it: 413 beyond that)
MAX_QUERY = 200  # characters of an item search
MAX_SEARCH = 50  # items one search returns


# pydantic itself refuses strings with lone surrogates (JSON may carry them; no tokenizer or database takes them)
Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class Body(BaseModel):
    """Request bodies: strict types (``true`` or ``"5"`` is not a number, ``1`` is not a boolean; an
    integer is a valid float) and finite numbers (JSON's NaN and Infinity are refused)."""

    model_config = ConfigDict(allow_inf_nan=False, strict=True)


class ScoredItem(BaseModel):
    item: str
    score: float
    title: str | None = None


class Ranking(BaseModel):
    version: str
    user: str | None = None
    items: list[ScoredItem]


class NewUserRequest(Body):
    """A user the model has not seen: liked item ids (oldest first) and/or a profile text."""

    history: list[Id] = Field(default_factory=list, max_length=MAX_LIST, description="liked item ids, oldest first")
    profile: Text | None = Field(None, description="free text, e.g. 'likes space opera and robots'")
    k: int = Field(10, ge=1, le=1000)
    exclude_seen: bool = True


class RankRequest(Body):
    """Re-rank an application's candidates for a known user, or for a history / profile."""

    user: Id | None = None
    history: list[Id] | None = Field(None, max_length=MAX_LIST)
    profile: Text | None = None
    items: list[Id] = Field(..., min_length=1, max_length=MAX_LIST, description="candidate item ids")


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


FieldValue = Text | int | float | bool | None


class ItemRecord(Body):
    """An item: its id plus the text fields the model's template reads (extra fields allowed: at
    most MAX_FIELDS, named in at most MAX_ID characters, each a string of at most MAX_TEXT
    characters, a number, a boolean or null)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False, strict=True)
    __pydantic_extra__: dict[str, FieldValue] = Field(init=False)  # type: ignore[assignment]  # checked by pydantic
    item: Id

    @model_validator(mode="before")
    @classmethod
    def _few_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if len(data) > MAX_FIELDS + 1:
                raise ValueError(f"at most {MAX_FIELDS} fields besides 'item'; got {len(data) - 1}")
            long = next((k for k in data if len(k) > MAX_ID), None)
            if long is not None:
                raise ValueError(f"field names have at most {MAX_ID} characters; got one of {len(long)}")
        return data


class ItemsRequest(Body):
    items: list[ItemRecord] = Field(..., min_length=1, max_length=MAX_BATCH)


class ItemsResponse(BaseModel):
    version: str
    added: list[str]
    updated: list[str]


class EventIn(Body):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)] | None = Field(
        None, description="the client's id for this event: an event whose id is already stored is not stored "
                          "again, so a retried batch counts once")
    user: Id
    item: Id
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "click"
    value: float = 1.0
    timestamp: float | None = Field(None, ge=0, description="Unix seconds, not in the future (beyond the server's "
                                                            "--clock-skew); the time of receipt when omitted")


class EventsRequest(Body):
    events: list[EventIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class EventsResponse(BaseModel):
    """``stored`` new events with ids ``first_id``..``last_id`` (None when none was new);
    ``duplicates``: events of the batch not stored again (an ``event_id`` already stored or
    repeated, or an event identical in every field to another of the batch)."""

    stored: int
    duplicates: int
    first_id: int | None
    last_id: int | None


class ReloadRequest(Body):
    version: str | None = Field(None, max_length=MAX_ID,
                                description="a version name in the store (v0001, ...); the store's CURRENT when omitted")


class ReloadResponse(BaseModel):
    """``changed``: a model was loaded and swapped in; false when the version asked for is the served
    one and its files did not change since it was loaded (answered at once, nothing loaded)."""

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


class SearchResponse(BaseModel):
    """Items whose title contains the query (an item whose id equals it first)."""

    version: str
    items: list[dict[str, Any]]
