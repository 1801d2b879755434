"""The request and response bodies as named models, for the OpenAPI document only.

The routes do not parse with these: a body is read by `Body` (statebridge/api/deps.py),
strictly and within bounds, and checked field by field with Phase 1's exact messages; an
answer is built as a dict and sent in the envelope. Declaring the models as FastAPI body
parameters or `response_model`s would put pydantic on the hot path and change the error
messages. So each route names its models in its decorator (`body(...)`, `answers(...)`):
`/openapi.json` and /docs show typed bodies, and nothing runs per request.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

JsTime = Annotated[
    str,
    Field(description="UTC time as JavaScript prints it", examples=["2026-01-01T12:00:00.000Z"]),
]
REF = "#/components/schemas/{model}"


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# -- request bodies ---------------------------------------------------------------------------


class CalculateRequest(Model):
    """Arithmetic over the values, left to right, in IEEE doubles."""

    operation: Literal["add", "subtract", "multiply", "average"]
    values: list[float] = Field(min_length=1, description="JSON numbers (not booleans)")
    clientContext: Any = Field(None, description="Echoed back; anything")


class CreateSession(Model):
    userId: str = Field(examples=["user001"])
    data: dict[str, Any] | None = Field(None, description="Initial session data")


class UpdateSession(Model):
    data: dict[str, Any] = Field(description="Merged into the session data")


class AddToCart(Model):
    productId: str = Field(examples=["prod001"])
    quantity: int = Field(1, ge=1, le=1000)


class Preferences(Model):
    preferences: dict[str, Any] = Field(examples=[{"theme": "dark", "language": "fr"}])


class WorkflowRequest(Model):
    """Any JSON object (or none): the workflow's state is kept by the server."""


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CalculateRequest,
    CreateSession,
    UpdateSession,
    AddToCart,
    Preferences,
    WorkflowRequest,
)


def body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route whose body `Body` reads: a reference to its model."""
    assert model in REQUEST_MODELS, model
    schema = {"$ref": REF.format(model=model.__name__)}
    return {
        "requestBody": {"content": {"application/json": {"schema": schema}}, "required": required}
    }


# -- parts of answers -------------------------------------------------------------------------


class FieldError(Model):
    field: str
    message: str


class ErrorEnvelope(Model):
    """Phase 1's error envelope."""

    status: Literal["error"]
    message: str
    errors: list[FieldError]
    timestamp: JsTime


class Memory(Model):
    rss: int
    heapTotal: int
    heapUsed: int
    external: int
    arrayBuffers: int


class User(Model):
    id: str
    name: str
    email: str
    preferences: dict[str, Any]
    updatedAt: JsTime | None = Field(None, description="Present once preferences were set")


class Product(Model):
    id: str
    name: str
    price: float
    category: str


class CartLine(Model):
    productId: str
    name: str
    price: float
    quantity: int
    addedAt: JsTime


class Cart(Model):
    sessionId: str
    items: list[CartLine]
    total: float
    itemCount: int | None = Field(None, description="Absent when the cart was just cleared")
    createdAt: JsTime | None = Field(None, description="On GET /cart only")
    updatedAt: JsTime


class SessionRef(Model):
    id: str
    userId: str
    createdAt: JsTime
    expiresAt: JsTime


class SessionSummary(SessionRef):
    lastAccessed: JsTime
    data: dict[str, Any]


class SessionData(Model):
    id: str
    data: dict[str, Any]
    lastAccessed: JsTime


class UserRef(Model):
    id: str
    name: str
    email: str


class SessionInfo(Model):
    sessionId: str
    userId: str
    sessionAge: str


class DemonstrationSession(Model):
    sessionId: str
    userId: str
    sessionCreated: JsTime
    sessionAge: str


class ServerStats(Model):
    activeSessions: int
    activeCarts: int


class ProductFilters(Model):
    category: str | None
    minPrice: str | None
    maxPrice: str | None


class AddedItem(Model):
    productId: str
    quantity: int


class PreferencesView(Model):
    id: str
    preferences: dict[str, Any]
    updatedAt: JsTime | None


class Component(Model):
    status: Literal["up", "down"]
    latencyMs: float | None = None
    error: str | None = None


# -- the `data` of each answer ----------------------------------------------------------------


class StatelessHealth(Model):
    status: Literal["healthy"]
    service: str
    server: str
    timestamp: JsTime
    uptime: float
    memory: Memory
    requestCount: int
    serverType: Literal["stateless"]
    note: str


class StatelessInfo(Model):
    server: str
    timestamp: JsTime
    requestCount: int
    clientId: str
    randomValue: float
    message: str
    note: str


class Calculation(Model):
    operation: str
    input: list[float]
    result: float
    processedAt: JsTime
    clientContext: Any = None
    note: str


class RandomData(Model):
    count: int = Field(ge=1, le=10)
    type: Literal["number", "string", "boolean"]
    values: list[float | str | bool]
    generatedAt: JsTime
    note: str


class UserList(Model):
    users: list[User]
    count: int
    retrievedAt: JsTime
    note: str


class UserFound(Model):
    user: User
    retrievedAt: JsTime
    note: str


class ProductList(Model):
    products: list[Product]
    count: int
    filters: ProductFilters
    retrievedAt: JsTime
    note: str


class StatelessDemonstration(Model):
    demonstration: str
    previousRequestCount: int
    currentRequestCount: int
    yourRequestNumber: int
    timestamp: JsTime
    clientIdentifier: str
    explanation: list[str]


class Comparison(Model):
    comparison: str
    statelessCharacteristics: list[str]
    statefulCharacteristics: list[str]
    whenToUseStateless: list[str]
    note: str


class StatefulHealth(Model):
    status: Literal["healthy"]
    service: str
    server: str
    timestamp: JsTime
    uptime: float
    memory: Memory
    activeSessions: int
    activeCarts: int
    serverType: Literal["stateful"]
    note: str


class StatefulInfo(Model):
    server: str
    timestamp: JsTime
    sessionInfo: SessionInfo | None
    serverStats: ServerStats
    message: str
    note: str


class SessionCreated(Model):
    session: SessionRef
    user: UserRef
    note: str


class SessionView(Model):
    session: SessionSummary
    note: str


class SessionUpdated(Model):
    session: SessionData
    note: str


class SessionEnded(Model):
    sessionId: str
    deleted: bool
    note: str


class SessionRegenerated(Model):
    session: SessionRef
    previousId: str
    note: str


class Sibling(Model):
    hint: str = Field(description="A short name of the session; reveals nothing of its id")
    current: bool = Field(description="Whether it is the session of this request")
    createdAt: JsTime
    lastAccessed: JsTime
    expiresAt: JsTime
    clientAddress: str | None
    userAgent: str | None


class Siblings(Model):
    userId: str
    sessions: list[Sibling]
    note: str


class SiblingsRevoked(Model):
    userId: str
    revoked: list[str] = Field(description="The hints of the sessions ended")
    note: str


class CartView(Model):
    cart: Cart
    note: str


class CartAdded(Model):
    cart: Cart
    addedItem: AddedItem
    note: str


class CartRemoved(Model):
    cart: Cart
    removedProductId: str
    note: str


class Profile(Model):
    profile: User
    note: str


class PreferencesUpdated(Model):
    profile: PreferencesView
    note: str


class StatefulDemonstration(Model):
    demonstration: str
    sessionInfo: DemonstrationSession
    visitCount: int
    timestamp: JsTime
    explanation: list[str]
    note: str


class WorkflowStarted(Model):
    workflowId: str
    currentStep: str
    nextStep: str
    message: str
    note: str


class WorkflowStep(Model):
    """The next step, or (currentStep "completed") the completion."""

    workflowId: str | None
    currentStep: str
    nextStep: str | None = Field(None, description="While the workflow goes on")
    progress: str | None = Field(None, description='While the workflow goes on, e.g. "2/4"')
    steps: list[str] | None = Field(None, description="On completion")
    startedAt: JsTime | None = Field(None, description="On completion")
    completedAt: JsTime | None = Field(None, description="On completion")
    message: str
    note: str


class Liveness(Model):
    status: Literal["alive"]
    instanceId: str
    uptime: float


class Readiness(Model):
    status: Literal["ready", "not ready"]
    # Redis is down: still ready (the database serves what Redis would), at a cost
    degraded: bool
    instanceId: str
    components: dict[str, Component]


# -- envelopes --------------------------------------------------------------------------------


class SuccessEnvelope(Model):
    status: Literal["success"]
    message: str


@cache
def envelope(data: type[BaseModel]) -> type[BaseModel]:
    """Phase 1's success envelope around `data`, named after it (`<Data>Response`)."""
    return create_model(
        f"{data.__name__}Response",
        __base__=SuccessEnvelope,
        __doc__=f"Phase 1's success envelope; `data` is {data.__name__}.",
        data=(data, ...),
        timestamp=(JsTime, ...),
    )


ERRORS = {
    400: "Validation failed (the message and `errors` say what)",
    401: "No session, or an unknown or expired one",
    404: "Not found",
    413: "Too large",
    503: "A store (database, Redis) is unavailable; retry after `Retry-After`",
}


def answers(
    data: type[BaseModel], *errors: int, store: bool = True
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the envelope around `data`, and the error envelopes (503
    too when the route uses a store)."""
    documented: dict[int | str, dict[str, Any]] = {
        200: {"model": envelope(data), "description": "Success, in the envelope"}
    }
    for code in (*errors, 503) if store else errors:
        documented[code] = {"model": ErrorEnvelope, "description": ERRORS[code]}
    return documented


class NotReady(Model):
    """/health/ready's 503 (the database is down): the error envelope with the
    components' status."""

    status: Literal["error"]
    message: str
    errors: list[FieldError]
    timestamp: JsTime
    data: Readiness


# -- the document ----------------------------------------------------------------------------


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the request models, less the 422 answers FastAPI assumes
    (validation errors are 400s in the envelope here). Built once per app."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        routes=app.routes,
    )
    _, definitions = models_json_schema(
        [(model, "validation") for model in REQUEST_MODELS], ref_template=REF
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions.get("$defs", {}))
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
