//! The API reference page: the OpenAPI document rendered as one HTML page by parley itself
//! (nothing fetched from another host), served at `/reference`. It is written once, when the
//! router is built.

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value as Json;

/// The page as served.
#[derive(Clone)]
pub struct Reference(pub Bytes);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #ffffff;
  --code: #f3f5f8; --get: #1f6feb; --post: #1a7f37; --patch: #9a6700; --put: #8250df; --delete: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #9aa3b2; --line: #30363d;
  --bg: #0f1216; --code: #1a1f26; } }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 62rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid var(--line); }
p.lead { color: var(--muted); margin-top: 0; }
nav a { margin-right: 1rem; } a { color: var(--get); }
section.op { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.op h3 { margin: 0; font-size: 1rem; font-family: ui-monospace, monospace; word-break: break-all; }
.method { display: inline-block; min-width: 4.2rem; font-weight: 700; text-transform: uppercase; }
.get { color: var(--get); } .post { color: var(--post); } .patch { color: var(--patch); }
.put { color: var(--put); } .delete { color: var(--delete); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
code { background: var(--code); padding: 0 .25rem; border-radius: 3px; font-size: .9em; }
.muted { color: var(--muted); }
";

/// Renders the OpenAPI document (as JSON) as one HTML page.
pub fn render(document: &Json) -> String {
    let info = &document["info"];
    let mut by_tag: Vec<(String, Vec<String>)> = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(operation) = item.get(method) else { continue };
            let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
            let html = operation_html(method, path, operation);
            match by_tag.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, list)) => list.push(html),
                None => by_tag.push((tag, vec![html])),
            }
        }
    }
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str(&format!(
        "<title>{} API reference</title><style>{STYLE}</style></head><body><main>",
        text(&info["title"])
    ));
    out.push_str(&format!("<h1>{} API reference</h1>", text(&info["title"])));
    out.push_str(&format!("<p class=\"lead\">{} Version {}. ", text(&info["description"]), text(&info["version"])));
    out.push_str("The same as <a href=\"/openapi.json\">/openapi.json</a>. OData v4 is at ");
    out.push_str("<a href=\"/v2.4/\">/v2.4</a> (<a href=\"/v2.4/$metadata\">$metadata</a>).</p><nav>");
    for (tag, _) in &by_tag {
        out.push_str(&format!("<a href=\"#{0}\">{0}</a>", escape(tag)));
    }
    out.push_str("</nav>");
    for (tag, operations) in &by_tag {
        out.push_str(&format!("<h2 id=\"{0}\">{0}</h2>", escape(tag)));
        for operation in operations {
            out.push_str(operation);
        }
    }
    out.push_str("</main></body></html>\n");
    out
}

fn operation_html(method: &str, path: &str, operation: &Json) -> String {
    let mut out =
        format!("<section class=\"op\"><h3><span class=\"method {method}\">{method}</span> {}</h3>", escape(path));
    for key in ["summary", "description"] {
        if let Some(line) = operation[key].as_str().filter(|s| !s.is_empty()) {
            out.push_str(&format!("<p>{}</p>", escape(line)));
        }
    }
    let parameters: Vec<&Json> = operation["parameters"].as_array().into_iter().flatten().collect();
    if !parameters.is_empty() {
        out.push_str("<table><tr><th>parameter</th><th>in</th><th></th><th>what</th></tr>");
        for p in parameters {
            let required = if p["required"].as_bool() == Some(true) { "required" } else { "" };
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{required}</td><td>{}</td></tr>",
                text(&p["name"]),
                text(&p["in"]),
                text(&p["description"])
            ));
        }
        out.push_str("</table>");
    }
    if let Some(body) = operation["requestBody"].as_object() {
        let types: Vec<String> = body
            .get("content")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
            .map(|(t, _)| format!("<code>{}</code>", escape(t)))
            .collect();
        out.push_str(&format!(
            "<p><b>Body</b> {} <span class=\"muted\">{}</span></p>",
            types.join(" or "),
            body.get("description").map(text).unwrap_or_default()
        ));
    }
    out.push_str("<table><tr><th>answer</th><th>what</th></tr>");
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        out.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", escape(status), text(&response["description"])));
    }
    out.push_str("</table></section>");
    out
}

fn text(value: &Json) -> String {
    escape(value.as_str().unwrap_or_default())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[utoipa::path(get, path = "/reference", tag = "meta", security(), responses(
    (status = 200, description = "This API reference as one HTML page", content_type = "text/html"),
))]
/// `GET /reference`.
pub async fn page(Extension(Reference(bytes)): Extension<Reference>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], bytes).into_response()
}

#[utoipa::path(get, path = "/", tag = "meta", security(), responses(
    (status = 307, description = "To the dashboard", headers(("location" = String, description = "/insights"))),
))]
/// `GET /`: the dashboard, which links to this reference.
pub async fn home() -> Redirect {
    Redirect::temporary("/insights")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_on_the_page_and_nothing_is_left_unescaped() {
        let (_, document) = crate::app::documented();
        let json = serde_json::to_value(&document).unwrap();
        let html = render(&json);
        assert!(html.contains("<span class=\"method patch\">patch</span> /new/v2.0/analytics</h3>"));
        assert!(html.contains("<span class=\"method post\">post</span> /new/v2.0/analytics/goalevents</h3>"));
        let operations: usize = json["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
            .sum();
        assert_eq!(html.matches("<section class=\"op\">").count(), operations);
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
        assert!(!html.contains("http://") && !html.contains("https://"), "nothing from another host");
    }
}
