//! Server-rendered HTML: escaping, filling templates, and the headers every
//! page carries.
//!
//! Templates are plain HTML files with `{{slot}}` markers. Every value that
//! comes from data is escaped before it goes into a slot, and filling is a
//! single pass, so a value that happens to contain `{{…}}` stays text.

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::assets::{Asset, STYLE};

const LAYOUT: &str = include_str!("assets/layout.html");
const MESSAGE: &str = include_str!("assets/message.html");

/// Pages load scripts and styles from this node only, talk to this node
/// only, and cannot be framed. Data for scripts travels as JSON in a
/// non-executable `<script type="application/json">`, so no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Replaces each `{{name}}` with its value, as given; unknown names are
/// left out. Values are never scanned for slots themselves.
pub fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        if let Some((_, value)) = slots.iter().find(|(k, _)| *k == name) {
            out.push_str(value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// JSON that is safe inside `<script type="application/json">`: `<`, `>`
/// and `&` only occur inside JSON strings, where `\u` escapes mean the same.
pub fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// One page: a title, its `<main>` content, and what goes in `<head>`.
pub struct Page<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub body: String,
    pub head: String,
}

impl<'a> Page<'a> {
    pub fn new(title: &'a str, body: String) -> Self {
        Self {
            status: StatusCode::OK,
            title,
            body,
            head: String::new(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a module script and the JSON data it reads (`#velvet-config`).
    pub fn script(mut self, asset: &Asset, data: &Value) -> Self {
        self.head.push_str(&format!(
            "<script type=\"application/json\" id=\"velvet-config\">{}</script>\n\
             <script type=\"module\" src=\"{}\"></script>\n",
            script_json(data),
            escape(&asset.url()),
        ));
        self
    }

    /// Raw markup for `<head>`; callers escape what they put in it.
    pub fn head(mut self, markup: &str) -> Self {
        self.head.push_str(markup);
        self
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        let css = escape(&STYLE.url());
        let html = fill(
            LAYOUT,
            &[
                ("title", &escape(self.title)),
                ("css", &css),
                ("head", &self.head),
                ("body", &self.body),
            ],
        );
        let headers = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Pages show live state: never from a cache.
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            // Checkout URLs carry handoff tokens: no Referer may leak them.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (HeaderName::from_static("x-frame-options"), "DENY"),
        ];
        (self.status, headers, html).into_response()
    }
}

/// A page that only says something: errors, unknown experiences.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = fill(
        MESSAGE,
        &[("title", &escape(title)), ("text", &escape(text))],
    );
    Page::new(title, body).status(status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_escaped_and_never_read_as_slots() {
        let value = escape("<b>{{title}}</b> & \"q\"");
        let page = fill("<p>{{text}}</p>{{title}}", &[("text", &value)]);
        assert_eq!(
            page,
            "<p>&lt;b&gt;{{title}}&lt;/b&gt; &amp; &quot;q&quot;</p>"
        );
    }

    #[test]
    fn json_in_a_script_element_cannot_close_it() {
        let text = script_json(&serde_json::json!({ "a": "</script><b>&" }));
        assert!(!text.contains("</script>"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"], "</script><b>&");
    }
}
