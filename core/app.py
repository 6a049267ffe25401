"""The factory every front door, domain API and simulator uses: one Litestar app under `/<mount>`."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from litestar import Litestar, MediaType, Response, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.routes import HTTPRoute

from core.health import healthz, readyz
from core.problems import EXCEPTION_HANDLERS, PROBLEM_JSON
from core.resources import Resources
from core.settings import Settings

Startup = Callable[[Resources], Awaitable[None]]
VERSION = "1.0.0"


def _provide_resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def build_app(
    mount: str,
    *,
    settings: Settings,
    title: str,
    description: str,
    route_handlers: Sequence[Any] = (),
    externals: dict[str, str] | None = None,
    on_startup: Sequence[Startup] = (),
    resources: Resources | None = None,
    extra_schemas: dict[str, Schema] | None = None,
    stateless: bool = False,
    security_schemes: Mapping[str, SecurityScheme | Reference] | None = None,
    exception_handlers: Mapping[Any, Any] | None = None,
    behind_edge: bool = True,
) -> Litestar:
    """Build the app for `/<mount>`. `externals` (name -> URL) are checked by `/readyz`.

    When `resources` is None the app opens its own at start-up and closes them at shutdown; the combined server
    passes one shared set to all apps instead. `stateless` apps (the simulators) use no database or Redis.
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = app.state.get("resources") is None and not stateless
        if owned:
            app.state.resources = await Resources.open(settings)
        for hook in on_startup:
            await hook(app.state.resources)  # stateless apps get None
        try:
            yield
        finally:
            if owned:
                await app.state.resources.close()

    prefix = f"/{mount}" if mount else ""
    router = Router(path=prefix or "/", route_handlers=[healthz, readyz, *route_handlers])
    app = Litestar(
        route_handlers=[router],
        lifespan=[lifespan],
        state=State({"resources": resources, "externals": dict(externals or {}), "settings": settings}),
        dependencies={"res": Provide(_provide_resources, sync_to_thread=False)},
        exception_handlers={**EXCEPTION_HANDLERS, **(exception_handlers or {})},
        openapi_config=OpenAPIConfig(
            title=title,
            version=VERSION,
            description=description,
            path=f"{prefix}/schema",
            render_plugins=[JsonRenderPlugin()],
            use_handler_docstrings=True,
            components=Components(security_schemes=dict(security_schemes or {})),
        ),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,  # core.observe configures JSON logs for the process
    )
    finalize_openapi(app, extra_schemas or {})
    if behind_edge:  # core.server serves it behind core.edge; the simulators are not
        state_edge_rules(app.openapi_schema)
    fix_options_allow(app)
    return app


def fix_options_allow(app: Litestar) -> None:
    """Litestar 2.25 binds each path's automatic OPTIONS handler to the route as it stood when the path's first
    handler was registered, so `Allow` misses methods added later (GET and POST on one path answer
    `Allow: GET, OPTIONS`). Point every OPTIONS handler at its final route's methods."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        allow = ", ".join(sorted(route.methods))
        for handler in route.route_handlers:
            if handler.handler_name == "options_handler":

                def options_handler(scope: Any, allow: str = allow) -> Response[None]:
                    return Response(None, status_code=204, headers={"Allow": allow}, media_type=MediaType.TEXT)

                handler._fn = options_handler  # type: ignore[assignment]


def finalize_openapi(app: Litestar, extra_schemas: dict[str, Schema]) -> None:
    """Every error is an RFC 9457 problem document (core.problems.Problem): document that once, for every operation."""
    doc = app.openapi_schema
    doc.components = doc.components or Components()
    schemas = doc.components.schemas if doc.components.schemas is not None else {}
    schemas["Problem"] = Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, description="stable URI of the error kind"),
            "title": Schema(type=OpenAPIType.STRING, description="English title"),
            "title_zh": Schema(type=OpenAPIType.STRING, description="中文标题"),
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": Schema(type=OpenAPIType.STRING),
            "instance": Schema(type=OpenAPIType.STRING),
            "request_id": Schema(type=OpenAPIType.STRING),
            "errors": Schema(
                type=OpenAPIType.ARRAY,
                items=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["field", "message"],
                    properties={
                        "field": Schema(type=OpenAPIType.STRING),
                        "message": Schema(type=OpenAPIType.STRING),
                    },
                ),
            ),
        },
    )
    schemas.update(extra_schemas)
    doc.components.schemas = schemas
    problem = OpenAPIResponse(
        description="Problem document (RFC 9457) for any error",
        content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
    )
    for path_item in (doc.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            op = getattr(path_item, method, None)
            if op is None:
                continue
            responses = op.responses or {}
            for code in list(responses):
                # Litestar's automatic error entries (described by the bare HTTP status text) become the problem
                # default; error responses a handler declares itself (OAuth error bodies, readiness) stay.
                entry = responses[code]
                generic = isinstance(entry, OpenAPIResponse) and entry.description == HTTPStatus(int(code)).description
                if code[0] in "45" and generic:
                    del responses[code]
            responses["default"] = problem
            op.responses = responses


# What core.edge refuses in front of every app, stated in every request schema so that a client (or a fuzzer)
# reading the document knows it: no C0 control character other than tab, newline and carriage return, and no DEL,
# in the path, a query parameter or a JSON or urlencoded body (keys and string values); no integer beyond 64 bits.
_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_INT64 = (-(2**63), 2**63 - 1)


_EDGE_VALUE = "EdgeValue"


def state_edge_rules(doc: Any) -> None:
    # Litestar shares schema and response objects between apps built in one process (the combined server, the
    # OpenAPI export): work on this document's own copies, or one app's rules leak into another's document.
    doc.paths = copy.deepcopy(doc.paths)
    doc.components = copy.deepcopy(doc.components) or Components()
    components = doc.components.schemas if doc.components.schemas is not None else {}
    # Any JSON value the edge lets through: a field the schema does not name is ignored, yet checked by the edge.
    me = Reference(ref=f"#/components/schemas/{_EDGE_VALUE}")
    components[_EDGE_VALUE] = Schema(
        description="any JSON value without C0 control characters (other than tab, LF, CR) or DEL, integers in 64 bits",
        any_of=[
            Schema(type=OpenAPIType.STRING, pattern=_NO_CONTROL),
            Schema(type=OpenAPIType.INTEGER, minimum=_INT64[0], maximum=_INT64[1]),
            Schema(type=OpenAPIType.NUMBER),
            Schema(type=OpenAPIType.BOOLEAN),
            Schema(type=OpenAPIType.NULL),
            Schema(type=OpenAPIType.ARRAY, items=me),
            Schema(type=OpenAPIType.OBJECT, property_names=Schema(pattern=_NO_CONTROL), additional_properties=me),
        ],
    )
    doc.components.schemas = components
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Reference):
            name = node.ref.rsplit("/", 1)[-1]
            if name in components:
                walk(components[name])
            return
        if not isinstance(node, Schema) or id(node) in seen:
            return
        seen.add(id(node))
        types = node.type if isinstance(node.type, Sequence) and not isinstance(node.type, str) else [node.type]
        if OpenAPIType.STRING in types and not (node.pattern or node.format or node.enum or node.const is not None):
            node.pattern = _NO_CONTROL
        if OpenAPIType.INTEGER in types:
            node.minimum = _INT64[0] if node.minimum is None else node.minimum
            node.maximum = _INT64[1] if node.maximum is None else node.maximum
        if OpenAPIType.OBJECT in types and node.property_names is None:
            node.property_names = Schema(pattern=_NO_CONTROL)
        if OpenAPIType.OBJECT in types and node.additional_properties is None:
            node.additional_properties = Reference(ref=f"#/components/schemas/{_EDGE_VALUE}")  # unknown fields too
        for child in (node.items, node.additional_properties, node.contains):
            walk(child)
        for group in (node.all_of, node.any_of, node.one_of, node.prefix_items):
            for child in group or ():
                walk(child)
        for child in (node.properties or {}).values():
            walk(child)

    for path_item in (doc.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            op = getattr(path_item, method, None)
            if op is None:
                continue
            for param in list(path_item.parameters or []) + list(op.parameters or []):
                if isinstance(param, OpenAPIParameter) and param.param_in in ("path", "query"):
                    walk(param.schema)
            body = op.request_body
            if body is not None and not isinstance(body, Reference):
                for media, content in (body.content or {}).items():
                    if "json" in media or media == "application/x-www-form-urlencoded":
                        walk(content.schema)
            # The edge answers its own refusals as a 400 problem document, also where the operation's own 400 is
            # another shape (the OAuth endpoints' error JSON): say so.
            responses = op.responses if op.responses is not None else {}
            refused = responses.get("400")
            if (
                isinstance(refused, OpenAPIResponse)
                and refused.content is not None
                and PROBLEM_JSON not in refused.content
            ):
                refused.content[PROBLEM_JSON] = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
            elif refused is None:
                responses["400"] = OpenAPIResponse(
                    description="refused at the edge (a 400 problem naming the field)",
                    content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
                )
                op.responses = responses
