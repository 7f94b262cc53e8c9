//! `/openapi.json` documents every route of the contract, and real
//! responses — successes and errors — validate against it.

mod common;

use common::{ADMIN_KEY, Backend, MERCHANT_KEY, TestNode};
use serde_json::{Value, json};

/// A small validator for the subset of JSON Schema the generator emits.
struct Doc(Value);

impl Doc {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "dangling reference {r}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    fn check(&self, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                self.check(value, s, at)?;
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array()
                && !options.iter().any(|s| self.check(value, s, at).is_ok())
            {
                return Err(format!("{at}: {value} matches none of {key}"));
            }
        }
        if let Some(options) = schema["enum"].as_array()
            && !options.contains(value)
        {
            return Err(format!("{at}: {value} not in {options:?}"));
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(value, t)) {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
        if let (Some(object), Some(props)) =
            (value.as_object(), schema["properties"].as_object())
        {
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap();
                if !object.contains_key(name) {
                    return Err(format!("{at}: missing required `{name}`"));
                }
            }
            for (name, sub) in props {
                if let Some(v) = object.get(name) {
                    self.check(v, sub, &format!("{at}.{name}"))?;
                }
            }
        }
        if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
            for (i, v) in list.iter().enumerate() {
                self.check(v, items, &format!("{at}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn response(&self, method: &str, path: &str, status: u16) -> &Value {
        let op = &self.0["paths"][path][method];
        assert!(!op.is_null(), "{method} {path} is documented");
        let response = &op["responses"][status.to_string()];
        assert!(
            !response.is_null(),
            "{method} {path} documents status {status}"
        );
        &response["content"]["application/json"]["schema"]
    }
}

fn type_matches(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

struct Checker<'a> {
    node: &'a TestNode,
    doc: Doc,
    checked: usize,
}

impl Checker<'_> {
    /// Calls a route and validates the reply against its documented schema.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self.node.http.request(m, self.node.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let schema = self.doc.response(method, template, status).clone();
        if schema.is_null() {
            return Value::Null;
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Err(e) = self.doc.check(&value, &schema, "$") {
            panic!("{method} {path} ({status}) does not match its schema: {e}\n{text}");
        }
        self.checked += 1;
        value
    }
}

#[tokio::test]
async fn every_route_is_documented_and_responses_match_the_description() {
    let node = TestNode::start(Backend::Memory).await;
    let doc: Value = node
        .http
        .get(node.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for path in [
        "/v1/sessions",
        "/v1/experiences/{id}",
        "/v1/experiences/{id}/status",
        "/v1/experiences/{id}/enter",
        "/v1/queues/{id}/enter",
        "/v1/queues/{id}/position",
        "/v1/queues/{id}/entry",
        "/v1/draws/{id}/enter",
        "/v1/draws/{id}/result",
        "/v1/draws/{id}/proof",
        "/v1/handoff/verify",
        "/v1/handoff/redeem",
        "/.well-known/jwks.json",
        "/v1/admin/experiences/{id}",
        "/v1/admin/sequences/{id}/pause",
        "/v1/admin/sequences/{id}/resume",
        "/v1/admin/sequences/{id}",
        "/v1/admin/experiences/{id}/inventory",
        "/v1/admin/experiences/{id}/announcement",
        "/v1/admin/draws/{id}/run",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            documented.iter().any(|d| *d == path),
            "{path} is documented"
        );
    }

    let mut c = Checker {
        node: &node,
        doc: Doc(doc),
        checked: 0,
    };
    let a = Some(ADMIN_KEY);
    let queue = json!({ "name": "Doc", "inventory": 9, "sequences": [
        { "id": "doc-q", "name": "Q", "kind": "queue", "admitPerMinute": 6000 },
        { "id": "doc-d", "name": "D", "kind": "draw", "winners": 1,
          "opensAt": "2020-01-01T00:00:00Z", "closesAt": "2099-01-01T00:00:00Z" }] });
    let exp = "/v1/admin/experiences/{id}";
    c.call("put", exp, "/v1/admin/experiences/doc", a, Some(queue))
        .await;
    c.call("get", exp, "/v1/admin/experiences/doc", a, None)
        .await;
    c.call(
        "put",
        exp,
        "/v1/admin/experiences/bad",
        a,
        Some(json!({ "name": "" })),
    )
    .await;
    c.call("get", exp, "/v1/admin/experiences/doc", None, None)
        .await;
    c.call(
        "get",
        exp,
        "/v1/admin/experiences/doc",
        Some(MERCHANT_KEY),
        None,
    )
    .await;
    let s = c
        .call("post", "/v1/sessions", "/v1/sessions", None, None)
        .await;
    let t = s["sessionToken"].as_str().unwrap().to_owned();
    let t = Some(t.as_str());
    c.call(
        "get",
        "/v1/experiences/{id}",
        "/v1/experiences/doc",
        None,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/experiences/{id}",
        "/v1/experiences/nope",
        None,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/experiences/{id}/status",
        "/v1/experiences/doc/status",
        None,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/experiences/{id}/enter",
        "/v1/experiences/doc/enter",
        t,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/queues/{id}/enter",
        "/v1/queues/doc-q/enter",
        t,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/queues/{id}/enter",
        "/v1/queues/doc-q/enter",
        None,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/queues/{id}/enter",
        "/v1/queues/nope/enter",
        t,
        None,
    )
    .await;
    let mut token = String::new();
    for _ in 0..100 {
        let e = c
            .call(
                "get",
                "/v1/queues/{id}/position",
                "/v1/queues/doc-q/position",
                t,
                None,
            )
            .await;
        if let Some(k) = e["handoffToken"].as_str() {
            token = k.to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let m = Some(MERCHANT_KEY);
    let body = Some(json!({ "token": token }));
    c.call(
        "post",
        "/v1/handoff/verify",
        "/v1/handoff/verify",
        m,
        body.clone(),
    )
    .await;
    c.call(
        "post",
        "/v1/handoff/redeem",
        "/v1/handoff/redeem",
        m,
        body.clone(),
    )
    .await;
    c.call("post", "/v1/handoff/redeem", "/v1/handoff/redeem", m, body)
        .await;
    c.call(
        "post",
        "/v1/handoff/verify",
        "/v1/handoff/verify",
        m,
        Some(json!({ "token": "x" })),
    )
    .await;
    c.call(
        "get",
        "/.well-known/jwks.json",
        "/.well-known/jwks.json",
        None,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/draws/{id}/enter",
        "/v1/draws/doc-d/enter",
        t,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/draws/{id}/result",
        "/v1/draws/doc-d/result",
        t,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/draws/{id}/proof",
        "/v1/draws/doc-d/proof",
        None,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/admin/draws/{id}/run",
        "/v1/admin/draws/doc-d/run",
        a,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/draws/{id}/result",
        "/v1/draws/doc-d/result",
        t,
        None,
    )
    .await;
    c.call(
        "get",
        "/v1/draws/{id}/proof",
        "/v1/draws/doc-d/proof",
        None,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/admin/sequences/{id}/pause",
        "/v1/admin/sequences/doc-q/pause",
        a,
        None,
    )
    .await;
    c.call(
        "post",
        "/v1/admin/sequences/{id}/resume",
        "/v1/admin/sequences/doc-q/resume",
        a,
        None,
    )
    .await;
    let patch = Some(json!({ "admitPerMinute": 60, "closesAt": null }));
    c.call(
        "patch",
        "/v1/admin/sequences/{id}",
        "/v1/admin/sequences/doc-q",
        a,
        patch,
    )
    .await;
    let inv = Some(json!({ "remaining": 3 }));
    c.call(
        "put",
        "/v1/admin/experiences/{id}/inventory",
        "/v1/admin/experiences/doc/inventory",
        a,
        inv,
    )
    .await;
    let note = Some(json!({ "message": "hello" }));
    c.call(
        "put",
        "/v1/admin/experiences/{id}/announcement",
        "/v1/admin/experiences/doc/announcement",
        a,
        note,
    )
    .await;
    c.call(
        "delete",
        "/v1/queues/{id}/entry",
        "/v1/queues/doc-q/entry",
        t,
        None,
    )
    .await;
    c.call("get", "/healthz", "/healthz", None, None).await;
    c.call("get", "/readyz", "/readyz", None, None).await;
    assert!(c.checked >= 30, "{} responses validated", c.checked);
}
