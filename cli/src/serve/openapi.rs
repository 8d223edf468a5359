//! The OpenAPI document of `POST /v1/events`, at `GET /v1/openapi.json`: what a helpdesk
//! not written in Rust generates its client from. (The admin API has its own, at
//! `/api/v1/openapi.json`.) Written by hand: one path, whose answers are those of
//! `deskhook serve --help`.

use serde_json::{Value, json};

use super::keys::IDEMPOTENCY_KEYS;

/// The answers that are problem documents, with what each says.
const PROBLEMS: [(&str, &str); 10] = [
    (
        "400",
        "An unknown body, or a bad header or field (named in `field`).",
    ),
    ("401", "A missing or wrong token."),
    (
        "408",
        "The body stopped arriving for the daemon's --body-timeout, or took 4 times that in \
         all; nothing of it was accepted: send it again.",
    ),
    (
        "409",
        "A request with the same Idempotency-Key is being accepted now: retry after \
         Retry-After.",
    ),
    (
        "413",
        "A body over max_payload (as received, or as deskhook sends it), or one the memory \
         budget cannot hold.",
    ),
    (
        "421",
        "A request for another host than the daemon's names, on a loopback --listen (see \
         --allow-host).",
    ),
    (
        "415",
        "A multipart body, a Content-Encoding other than identity, or a body not in UTF-8 \
         whose Content-Type names another charset.",
    ),
    (
        "422",
        "Another body under an Idempotency-Key already used (field: Idempotency-Key).",
    ),
    (
        "500",
        "The request's task failed (a bug, in the daemon's log); retry it after \
         Retry-After, with the same Idempotency-Key.",
    ),
    (
        "503",
        "Nothing kept the event (full queues, memory budget or spool), or too many events \
         are being accepted at once: retry after Retry-After.",
    ),
];

/// The document.
pub(super) fn events_document() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {
                "schema": {"$ref": "#/components/schemas/Problem"}
            }}
        })
    };
    let mut responses = serde_json::Map::new();
    responses.insert(
        "202".into(),
        json!({
            "description": "Accepted: with a spool, once on disk. `endpoints` is 0 (and \
                            `durable` false) when no endpoint takes the event: nothing is \
                            kept.",
            "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Accepted"}
            }}
        }),
    );
    for (status, description) in PROBLEMS {
        responses.insert(status.into(), problem(description));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "deskhook serve: events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Events in, for deskhook to deliver to the helpdesk's webhook \
                            endpoints. The admin API is described at /api/v1/openapi.json."
        },
        // Relative to this document: the daemon's root, behind a proxy's prefix too.
        "servers": [{"url": "../"}],
        "security": [{"bearer": []}],
        "paths": {"/v1/events": {"post": {
            "operationId": "postEvent",
            "summary": "Hand an event to deskhook",
            "description": "The body is the event's JSON: Zenlix, Usedesk or iQChannels, told \
                            from its keys or named by Deskhook-Format.",
            "parameters": [
                {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": format!(
                        "A retried request with the same key and body is the same event (the \
                         first answer again, with replayed_key true). Keys are per tenant \
                         (two tenants' same key are two keys); the last {IDEMPOTENCY_KEYS} of \
                         all tenants are kept, fewer when their answers take over 64 MiB (with \
                         a spool, across restarts): a retry after that many later keys is a \
                         new event."
                    ),
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}
                },
                {
                    "name": "Deskhook-Format", "in": "header", "required": false,
                    "description": "The body's format, when its keys should not tell it.",
                    "schema": {"type": "string", "enum": ["zenlix", "usedesk", "iqchannels"]}
                },
                {
                    "name": "Deskhook-Tenant", "in": "header", "required": false,
                    "description": "The company the event belongs to: it goes to that \
                                    tenant's endpoints and to those of none.",
                    "schema": {"type": "string", "minLength": 1}
                }
            ],
            "requestBody": {"required": true, "content": {"application/json": {
                "schema": {"type": "object"}
            }}},
            "responses": responses
        }}},
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The daemon's token, or its ingest token (--ingest-token-env or --ingest-token-file)."
            }},
            "schemas": {
                "Accepted": {
                    "type": "object",
                    "required": ["id", "event_type", "ticket", "endpoints", "durable",
                                 "replayed_key"],
                    "properties": {
                        "id": {"type": "string", "description": "The event's webhook-id."},
                        "event_type": {"type": "string"},
                        "ticket": {"type": "string"},
                        "tenant": {"type": ["string", "null"]},
                        "endpoints": {"type": "integer", "minimum": 0},
                        "durable": {"type": "boolean"},
                        "replayed_key": {"type": "boolean"},
                        "refused": {
                            "type": "array",
                            "description": "Without a spool: the endpoints that did not \
                                            queue it (the first 16); do not send it again.",
                            "items": {"type": "object", "properties": {
                                "endpoint": {"type": "string"},
                                "reason": {"type": "string"},
                                "dead_lettered": {"type": "boolean"}
                            }}
                        },
                        "refused_total": {"type": "integer", "minimum": 0}
                    }
                },
                "Problem": {
                    "type": "object",
                    "description": "RFC 9457.",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "field": {"type": "string"}
                    }
                }
            }
        }
    })
}
