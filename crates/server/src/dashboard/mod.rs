//! The dashboard at `/insights` (docs/dashboard.md): one HTML page, its script and its style,
//! written for parley and compiled into the binary, so that nothing is fetched from another
//! host and there is no build step. The page reads the same API every client reads (the report
//! API, the conversations and OData); this module only serves the files.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");
const ICON: &str = include_str!("icon.svg");

/// What the page may load and run: its own files and the API at the same address. The charts are
/// parley's own SVG, placed into the page; downloads are made from blobs.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The files change with the binary; the browser asks again and gets them compressed.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

#[utoipa::path(get, path = "/insights", tag = "meta", security(),
    params(
        ("view" = Option<String>, Query, description = "overview (default), transcripts, steps, goals or agents"),
        ("projectId" = Option<Vec<String>>, Query, description = "Repeatable: the projects shown, side by side when several"),
        ("range" = Option<String>, Query, description = "24h, 7d (default), 30d, 90d or 365d, up to now; or from and to"),
        ("from" = Option<String>, Query, description = "As the report API takes it"),
        ("to" = Option<String>, Query, description = "As the report API takes it"),
        ("timezone" = Option<String>, Query, description = "Any IANA zone; the browser's by default"),
        ("grain" = Option<String>, Query, description = "hour, day, week, month or year; chosen from the range by default"),
        ("channel" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("localeName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("endpointUrlToken" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("snapshotName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("flowName" = Option<Vec<String>>, Query, description = "Repeatable; !value excludes"),
        ("search" = Option<String>, Query, description = "Transcripts: words a message holds"),
        ("page" = Option<String>, Query, description = "Transcripts: next:CURSOR or previous:CURSOR"),
        ("session" = Option<String>, Query, description = "Transcripts: the session open"),
        ("startStep" = Option<String>, Query, description = "Steps: the funnel forward from this step"),
        ("endStep" = Option<String>, Query, description = "Steps: the funnel back from this step"),
    ),
    responses(
        (status = 200, description = "The dashboard: a web page that signs in and shows the reports; what it shows is held in these parameters", content_type = "text/html"),
        (status = 400, description = "A query parameter the page does not take, named in a problem body"),
    )
)]
/// `GET /insights`: the page; what it shows is held in its query string, read by its script.
pub async fn page() -> Response {
    file("text/html; charset=utf-8", PAGE)
}

#[utoipa::path(get, path = "/insights/app.js", tag = "meta", security(), responses(
    (status = 200, description = "The dashboard's script", content_type = "text/javascript"),
))]
/// `GET /insights/app.js`.
pub async fn script() -> Response {
    file("text/javascript; charset=utf-8", SCRIPT)
}

#[utoipa::path(get, path = "/insights/app.css", tag = "meta", security(), responses(
    (status = 200, description = "The dashboard's style sheet", content_type = "text/css"),
))]
/// `GET /insights/app.css`.
pub async fn style() -> Response {
    file("text/css; charset=utf-8", STYLE)
}

#[utoipa::path(get, path = "/favicon.ico", tag = "meta", security(), responses(
    (status = 200, description = "parley's icon, as SVG", content_type = "image/svg+xml"),
))]
/// `GET /favicon.ico`: the icon browsers ask for, drawn as SVG.
pub async fn icon() -> Response {
    file("image/svg+xml", ICON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files() {
        for reference in ["/insights/app.js", "/insights/app.css", "/favicon.ico"] {
            assert!(PAGE.contains(reference), "{reference}");
        }
        // Nothing from another host, and nothing inline that the policy would block.
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"), "an outside address");
        }
        assert!(!PAGE.contains("<script>") && !PAGE.contains(" style=") && !PAGE.contains("<style"));
    }
}
