//! `web/openapi.yaml` against the hub: every route the code serves is
//! documented and every documented route is served; every private one
//! refuses a caller without a session; and a signed-in owner's calls answer
//! with a documented status and, for JSON, the documented required fields.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, STORE};
use tallybox_e2e::test_card;
use tallybox_e2e::web::status_json;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

fn spec() -> Value {
    let text = std::fs::read_to_string(root().join("web/openapi.yaml")).expect("web/openapi.yaml");
    serde_norway::from_str(&text).expect("openapi.yaml is valid YAML")
}

/// `/api/v1/transactions/{id}` → `/api/v1/transactions/{}`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// (method, path shape) of every `warp::path!` route in the web server's source.
fn served() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let dir = root().join("hub/src/web");
    for entry in std::fs::read_dir(&dir).expect("hub/src/web") {
        let file = entry.unwrap().path();
        // The page's own static files are not API.
        if file.ends_with("assets.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("warp::path!(") {
            rest = &rest[at + "warp::path!(".len()..];
            let end = rest.find(')').unwrap();
            let path: String = rest[..end]
                .split('/')
                .map(|part| {
                    let part = part.trim();
                    if part.starts_with('"') {
                        part.trim_matches('"').to_string()
                    } else {
                        "{}".to_string()
                    }
                })
                .fold(String::new(), |acc, p| format!("{acc}/{p}"));
            let after = &rest[end..rest.len().min(end + 120)];
            let method = ["get", "post", "put", "delete"]
                .into_iter()
                .find(|m| after.contains(&format!("warp::{m}()")))
                .unwrap_or_else(|| panic!("no method after warp::path!({})", &rest[..end]));
            routes.insert((method.to_string(), path));
        }
    }
    routes
}

fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.clone(), shape(path)));
        }
    }
    ops
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let served = served();
    let documented = documented(&spec);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in web/openapi.yaml: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in web/openapi.yaml but not served: {missing:?}"
    );
    assert!(served.len() > 20, "{served:?}");
}

/// Follows `$ref` and merges `allOf`: the object's required fields.
fn required(spec: &Value, schema: &Value) -> Vec<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return required(spec, &spec["components"]["schemas"][name]);
    }
    let mut out: Vec<String> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(required(spec, part));
    }
    out
}

fn response_schema<'a>(spec: &'a Value, op: &'a Value, status: u16) -> Option<&'a Value> {
    let mut response = &op["responses"][status.to_string()];
    if let Some(r) = response["$ref"].as_str() {
        response = &spec["components"]["responses"][r.trim_start_matches("#/components/responses/")];
    }
    let schema = &response["content"]["application/json"]["schema"];
    (!schema.is_null()).then_some(schema)
}

#[test]
fn the_server_answers_as_documented() {
    let spec = spec();
    let hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T1");
    raw.request(
        "T1",
        &sale("api-000000001", &test_card("approved"), 1250),
        Duration::from_secs(10),
    )
    .expect("sale");
    let txn = hub.by_request("api-000000001").unwrap();
    let today = hub.get("/api/v1/today").1["date"].as_str().unwrap().to_string();
    let example = |name: &str| -> String {
        match name {
            "id" => txn["id"].to_string(),
            "token" => txn["receipt_token"].as_str().unwrap().to_string(),
            "from" | "to" | "date" => today.clone(),
            "scope" => "T1".into(),
            "name" => "ann".into(),
            "no" => "7".into(),
            "terminal" => "T9".into(),
            "provider" => "alipay".into(),
            "order" => "k2v7q0xm".into(),
            other => panic!("no example for {other}"),
        }
    };
    let web = hub.web();
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let mut sign_out = None;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut url = path.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "path" {
                    url = url.replace(&format!("{{{name}}}"), &example(name));
                } else if p["required"] == true {
                    query.push(format!("{name}={}", example(name)));
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let full = format!("http://127.0.0.1:{}{url}", hub.http);
            if !public {
                // No session: refused, as documented.
                let (status, body) = status_json(agent.request(&method.to_uppercase(), &full).call());
                assert_eq!(status, 401, "{method} {url} without a session: {body}");
                assert_eq!(body["error"]["code"], "unauthorized", "{method} {url}");
            }
            if method == "delete" && path == "/api/v1/session" {
                sign_out = Some(url);
                continue;
            }
            let (status, body) = if method == "get" {
                if op["responses"]["200"]["content"]["text/event-stream"].is_object() {
                    let r = agent.get(&full).set("cookie", web.cookie()).call().unwrap();
                    assert_eq!(r.content_type(), "text/event-stream", "{url}");
                    continue;
                }
                if op["responses"]["200"]["content"]["application/json"].is_null() {
                    // Not JSON when it works; a refusal is JSON like any other.
                    let (status, _, text) = web.get_text(&url);
                    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
                } else {
                    web.get(&url)
                }
            } else {
                // An empty body: a documented refusal (or a documented answer).
                web.send(&method.to_uppercase(), &url, json!({}))
            };
            assert!(
                op["responses"][status.to_string()].is_object(),
                "{method} {url} answered {status}, which web/openapi.yaml does not list: {body}"
            );
            if let Some(schema) = response_schema(&spec, op, status) {
                for field in required(&spec, schema) {
                    assert!(
                        body.get(&field).is_some(),
                        "{method} {url} ({status}) lacks the documented field {field}: {body}"
                    );
                }
            }
        }
    }
    let url = sign_out.expect("sign-out is documented");
    assert_eq!(web.send("DELETE", &url, Value::Null).0, 204);
}
