"""HTTP routes of the embedded registry, in the Confluent REST API's paths and JSON shapes.

Handlers are thin: they parse the request, ask the store and the compatibility checker,
and answer with Confluent's error codes ({"error_code": …, "message": …}), never a 500
for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from govpulse.embedded.registry.store import RegistryStore, Version
from govpulse.schemas.compatibility import LEVELS, InvalidSchema, check, parse_schema

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
STORE = web.AppKey("store", RegistryStore)


class RegistryError(Exception):
    """An error the API reports with Confluent's code and HTTP status."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=CONTENT_TYPE)


@web.middleware
async def confluent_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as error:
        return _reply({"error_code": error.code, "message": error.message}, error.status)
    except web.HTTPException as error:  # unknown route, wrong method
        return _reply({"error_code": error.status, "message": error.reason}, error.status)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


async def _schema_body(request: web.Request) -> str:
    """The `schema` of a JSON request body, checked to be valid AVRO."""
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryError(422, 42201, "Invalid JSON in the request body") from None
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(422, 42201, "Request body must be an object with a 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        raise RegistryError(422, 42201, f"Schema type {schema_type} is not supported here")
    if body.get("references"):
        raise RegistryError(422, 42201, "Schema references are not supported here")
    try:
        parse_schema(body["schema"])
    except InvalidSchema as error:
        raise RegistryError(422, 42201, f"Invalid schema: {error}") from None
    return body["schema"]


def _version(store: RegistryStore, subject: str, raw: str, deleted: bool = False) -> Version:
    versions = store.versions(subject, include_deleted=deleted)
    if not versions:
        raise subject_not_found(subject)
    if raw in ("latest", "-1"):
        return versions[-1]
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise RegistryError(
            422,
            42202,
            f"The specified version '{raw}' is not a valid version id. "
            'Allowed values are between [1, 2^31-1] and the string "latest"',
        )
    for version in versions:
        if version.version == int(raw):
            return version
    raise RegistryError(404, 40402, f"Version {raw} not found.")


def _problems(store: RegistryStore, subject: str, schema: str, against: list[Version]) -> list[str]:
    return check(schema, [v.schema for v in against], store.effective_level(subject))


# -- routes ------------------------------------------------------------------------------------
routes = web.RouteTableDef()


@routes.get("/")
async def root(_: web.Request) -> web.Response:
    return _reply({})


@routes.get("/subjects")
async def list_subjects(request: web.Request) -> web.Response:
    return _reply(request.app[STORE].subjects(include_deleted=_flag(request, "deleted")))


@routes.get("/schemas/types")
async def schema_types(_: web.Request) -> web.Response:
    return _reply(["AVRO"])


@routes.get("/schemas/ids/{id}")
async def schema_by_id(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    schema = request.app[STORE].schema_by_id(int(raw)) if raw.isdigit() else None
    if schema is None:
        raise RegistryError(404, 40403, f"Schema {raw} not found")
    return _reply({"schema": schema, "schemaType": "AVRO"})


@routes.get("/schemas/ids/{id}/versions")
async def versions_of_id(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    store = request.app[STORE]
    if not raw.isdigit() or store.schema_by_id(int(raw)) is None:
        raise RegistryError(404, 40403, f"Schema {raw} not found")
    pairs = store.subject_versions_of_id(int(raw))
    return _reply([{"subject": s, "version": v} for s, v in pairs])


@routes.get("/schemas/ids/{id}/subjects")
async def subjects_of_id(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    store = request.app[STORE]
    if not raw.isdigit() or store.schema_by_id(int(raw)) is None:
        raise RegistryError(404, 40403, f"Schema {raw} not found")
    return _reply(sorted({s for s, _ in store.subject_versions_of_id(int(raw))}))


@routes.get("/subjects/{subject}/versions")
async def list_versions(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    versions = request.app[STORE].versions(subject, include_deleted=_flag(request, "deleted"))
    if not versions:
        raise subject_not_found(subject)
    return _reply([v.version for v in versions])


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    store = request.app[STORE]
    schema = await _schema_body(request)
    existing = store.find(subject, schema)
    if existing:
        return _reply({"id": existing.schema_id})
    problems = _problems(store, subject, schema, store.versions(subject))
    if problems:
        level = store.effective_level(subject)
        raise RegistryError(
            409,
            409,
            f"Schema being registered is incompatible with an earlier schema for "
            f'subject "{subject}" under {level}: ' + "; ".join(problems),
        )
    return _reply({"id": store.add_version(subject, schema).schema_id})


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    store = request.app[STORE]
    schema = await _schema_body(request)
    if not store.versions(subject, include_deleted=_flag(request, "deleted")):
        raise subject_not_found(subject)
    found = store.find(subject, schema)
    if found is None:
        raise RegistryError(404, 40403, "Schema not found")
    return _reply(found.as_json())


@routes.get("/subjects/{subject}/versions/{version}")
async def get_version(request: web.Request) -> web.Response:
    store = request.app[STORE]
    found = _version(
        store,
        request.match_info["subject"],
        request.match_info["version"],
        _flag(request, "deleted"),
    )
    return _reply(found.as_json())


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def get_version_schema(request: web.Request) -> web.Response:
    found = _version(
        request.app[STORE], request.match_info["subject"], request.match_info["version"]
    )
    return web.Response(text=found.schema, content_type=CONTENT_TYPE)


@routes.delete("/subjects/{subject}")
async def delete_subject(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    permanent = _flag(request, "permanent")
    deleted = request.app[STORE].delete_subject(subject, permanent)
    if not deleted:
        raise subject_not_found(subject)
    return _reply(deleted)


@routes.delete("/subjects/{subject}/versions/{version}")
async def delete_version(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subject = request.match_info["subject"]
    permanent = _flag(request, "permanent")
    found = _version(store, subject, request.match_info["version"], deleted=permanent)
    store.delete_version(subject, found.version, permanent)
    return _reply(found.version)


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
async def test_against_version(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subject = request.match_info["subject"]
    schema = await _schema_body(request)
    target = _version(store, subject, request.match_info["version"])
    level = store.effective_level(subject).removesuffix("_TRANSITIVE")  # one version: plain
    problems = check(schema, [target.schema], level)
    return _compatibility_reply(problems, _flag(request, "verbose"))


@routes.post("/compatibility/subjects/{subject}/versions")
async def test_against_all(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subject = request.match_info["subject"]
    schema = await _schema_body(request)
    problems = _problems(store, subject, schema, store.versions(subject))
    return _compatibility_reply(problems, _flag(request, "verbose"))


def _compatibility_reply(problems: list[str], verbose: bool) -> web.Response:
    body: dict[str, Any] = {"is_compatible": not problems}
    if verbose:
        body["messages"] = problems
    return _reply(body)


# -- compatibility configuration -------------------------------------------------------------
async def _level_body(request: web.Request) -> str:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryError(422, 42203, "Invalid JSON in the request body") from None
    level = body.get("compatibility") if isinstance(body, dict) else None
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise RegistryError(
            422,
            42203,
            f"Invalid compatibility level {level!r}; expected one of {', '.join(LEVELS)}",
        )
    return level.upper()


@routes.get("/config")
async def get_global_level(request: web.Request) -> web.Response:
    return _reply({"compatibilityLevel": request.app[STORE].effective_level("")})


@routes.put("/config")
async def set_global_level(request: web.Request) -> web.Response:
    level = await _level_body(request)
    request.app[STORE].set_level(level)
    return _reply({"compatibility": level})


@routes.get("/config/{subject}")
async def get_subject_level(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subject = request.match_info["subject"]
    level = store.level(subject)
    if level is None and _flag(request, "defaultToGlobal"):
        level = store.effective_level(subject)
    if level is None:
        raise RegistryError(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )
    return _reply({"compatibilityLevel": level})


@routes.put("/config/{subject}")
async def set_subject_level(request: web.Request) -> web.Response:
    level = await _level_body(request)
    request.app[STORE].set_level(level, request.match_info["subject"])
    return _reply({"compatibility": level})


@routes.delete("/config/{subject}")
async def delete_subject_level(request: web.Request) -> web.Response:
    store = request.app[STORE]
    subject = request.match_info["subject"]
    previous = store.level(subject)
    if previous is None:
        raise subject_not_found(subject)
    store.delete_level(subject)
    return _reply({"compatibilityLevel": previous})


@routes.get("/mode")
async def mode(_: web.Request) -> web.Response:
    return _reply({"mode": "READWRITE"})


def build_app(data_dir: Path) -> web.Application:
    """The registry as an aiohttp application keeping its state under `data_dir`."""
    app = web.Application(middlewares=[confluent_errors])
    store = RegistryStore(data_dir)
    app[STORE] = store
    app.add_routes(routes)

    async def close_store(_: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close_store)
    return app
