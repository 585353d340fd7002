//! A signed-in client of the hub's JSON API: logs in with the owner password
//! the harness starts hubs with, keeps the session cookie, and sends the CSRF
//! token with every change, as the page does.

use std::time::Duration;

use serde_json::{json, Value};

/// The owner password every test hub starts with (`--owner-password`).
pub const OWNER_PASSWORD: &str = "counter-top-42";

#[derive(Clone)]
pub struct WebClient {
    base: String,
    agent: ureq::Agent,
    cookie: String,
    pub csrf: String,
    pub role: String,
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value, Option<ureq::Response>) {
    match result {
        Ok(r) => (r.status(), Value::Null, Some(r)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null), None),
        Err(e) => (0, json!({"transport": e.to_string()}), None),
    }
}

/// A client that opens a connection for each request. The hub closes a
/// kept-alive connection that has been idle for `HEADERS_WITHIN` (10 s); a
/// pooled one can be closed just as the next request goes out, and ureq
/// sends a request with a body only once (a browser would send it again).
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .max_idle_connections(0)
        .build()
}

/// Status and JSON body (Null when the body is not JSON) of any call.
pub fn status_json(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match answer(result) {
        (status, _, Some(r)) => (status, r.into_json().unwrap_or(Value::Null)),
        (status, body, None) => (status, body),
    }
}

impl WebClient {
    /// Signs in as `name` (None: the owner); Err carries the refusal.
    pub fn login(http: u16, name: Option<&str>, password: &str) -> Result<WebClient, (u16, Value)> {
        let base = format!("http://127.0.0.1:{http}");
        let agent = agent();
        let mut body = json!({"password": password});
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        let r = agent.post(&format!("{base}/api/v1/session")).send_json(body);
        match answer(r) {
            (200, _, Some(r)) => {
                let cookie = r
                    .header("set-cookie")
                    .and_then(|c| c.split(';').next())
                    .unwrap_or_default()
                    .to_string();
                let session: Value = r.into_json().unwrap_or(Value::Null);
                Ok(WebClient {
                    base,
                    agent,
                    cookie,
                    csrf: session["csrf"].as_str().unwrap_or_default().to_string(),
                    role: session["role"].as_str().unwrap_or_default().to_string(),
                })
            }
            (status, body, Some(r)) => Err((status, r.into_json().unwrap_or(body))),
            (status, body, None) => Err((status, body)),
        }
    }

    pub fn owner(http: u16) -> WebClient {
        WebClient::login(http, None, OWNER_PASSWORD).unwrap_or_else(|e| panic!("owner login failed: {e:?}"))
    }

    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        status_json(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("cookie", &self.cookie)
                .call(),
        )
    }

    /// The body as text (CSV, SVG, HTML) with its content type.
    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        match self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("cookie", &self.cookie)
            .call()
        {
            Ok(r) => {
                let kind = r.content_type().to_string();
                (r.status(), kind, r.into_string().unwrap_or_default())
            }
            Err(ureq::Error::Status(code, r)) => (code, String::new(), r.into_string().unwrap_or_default()),
            Err(e) => (0, String::new(), e.to_string()),
        }
    }

    /// POST, PUT or DELETE with the session's CSRF token.
    pub fn send(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        status_json(
            self.agent
                .request(method, &format!("{}{path}", self.base))
                .set("cookie", &self.cookie)
                .set("x-csrf-token", &self.csrf)
                .send_json(body),
        )
    }

    /// Sends `bytes` as they are (a file upload).
    pub fn send_bytes(&self, method: &str, path: &str, bytes: &[u8]) -> (u16, Value) {
        status_json(
            self.agent
                .request(method, &format!("{}{path}", self.base))
                .set("cookie", &self.cookie)
                .set("x-csrf-token", &self.csrf)
                .set("content-type", "application/octet-stream")
                .send_bytes(bytes),
        )
    }
}

/// The check `id` in a `GET /api/v1/checks` answer; a panic naming it when
/// it is not there.
pub fn find_check(checks: &Value, id: &str) -> Value {
    checks["checks"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {checks}"))
}

/// Check `id` as `GET /api/v1/checks` has it now, if it is there.
pub fn check(web: &WebClient, id: &str) -> Option<Value> {
    let (code, body) = web.get("/api/v1/checks");
    assert_eq!(code, 200, "{body}");
    body["checks"].as_array()?.iter().find(|c| c["id"] == id).cloned()
}

/// Waits until check `id` has `status` (20 s at most); returns it.
pub fn wait_check(web: &WebClient, id: &str, status: &str) -> Value {
    crate::wait_for(std::time::Duration::from_secs(20), || {
        check(web, id).filter(|c| c["status"] == status)
    })
    .unwrap_or_else(|| panic!("{id} never turned {status}: {:?}", check(web, id)))
}
