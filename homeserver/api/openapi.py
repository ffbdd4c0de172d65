"""The OpenAPI 3.1 document of ``/api/v1``, generated from the route registry at request
time, so routes added by any module appear without anyone editing a document."""

from __future__ import annotations

import re

from homeserver import __version__
from homeserver.api.errors import ERROR_SCHEMA, error_responses
from homeserver.api.routes import API_PREFIX, ApiRoute, ApiRoutes

BEARER = "bearerAuth"


def build_document(registry: ApiRoutes, public_baseurl: str, instance_name: str) -> dict:
    paths: dict[str, dict] = {}
    for route in registry.routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{instance_name} API", "version": __version__,
                 "description": "The Drocsid REST API. IDs are Matrix IDs; errors are Matrix error JSON."},
        "servers": [{"url": public_baseurl.rstrip("/") + API_PREFIX}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **registry.schemas},
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer",
                                         "description": "An access token from /auth/login, /auth/register, "
                                                        "/auth/refresh or the Matrix client API."}},
        },
    }


def _operation(route: ApiRoute) -> dict:
    operation = {
        "operationId": route.method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", route.path).strip("_"),
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{BEARER: []}] if route.auth else [],
    }
    if route.description:
        operation["description"] = route.description
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"\{(\w+)\}", route.path)]
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": route.request}}}
    success = {"description": "Success"}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": route.response}}
    operation["responses"] = {str(route.status): success,
                              **error_responses(has_body=route.request is not None, auth=route.auth,
                                                rate_limited=route.rate_limited)}
    return operation
