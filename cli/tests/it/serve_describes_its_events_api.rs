//! `deskhook serve` describes `POST /v1/events` in an OpenAPI document at
//! `/v1/openapi.json`, which either token reads: each answer of `serve --help` for events,
//! and nothing it does not list. Everything listens on 127.0.0.1.

use std::collections::BTreeSet;

use crate::support::request;
use crate::support::serve::{Serve, no_endpoint_config};

#[test]
fn the_events_api_has_an_openapi_document() {
    const INGEST: &str = "ingest-only-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = no_endpoint_config(dir.path());
    let serve = Serve::with_ingest_token(&config, INGEST);
    let (status, _) = request(&serve.addr, "GET", "/v1/openapi.json", &[], b"");
    assert_eq!(status, 401);
    let ingest = format!("Bearer {INGEST}");
    let (status, text) = request(
        &serve.addr,
        "GET",
        "/v1/openapi.json",
        &[("Authorization", ingest.as_str())],
        b"",
    );
    assert_eq!(status, 200, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let post = &doc["paths"]["/v1/events"]["post"];
    let headers: Vec<&str> = post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["Idempotency-Key", "Deskhook-Format", "Deskhook-Tenant"]
    );
    // Each answer is one `serve --help` lists, and each it lists for events is here (404
    // and 412 are the admin API's; 403 is the ingest token's elsewhere).
    let described: BTreeSet<String> = post["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_deskhook"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let listed: BTreeSet<String> = help
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .filter_map(|line| line.split_once("  "))
        .map(|(code, _)| code.to_owned())
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .filter(|code| !["403", "404", "412"].contains(&code.as_str()))
        .collect();
    assert_eq!(described, listed, "{help}");
}
