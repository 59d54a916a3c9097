//! The web dashboard's files: `GET /` answers its page and `GET /ui/{file}`
//! its scripts, style and icon, all compiled into the binary (no Node.js at build
//! time, no asset from elsewhere at run time). The files carry no data and
//! need no token; the page calls the API with the token its user typed in.
//! The sources live in `host/dashboard/` (scripts under `js/`, served
//! beside the others: `/ui/main.js`).

use super::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Scripts come from this host only; styles too, but the diagram's SVG
/// (drawn by this host) carries inline presentation attributes.
const POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every file under `/ui/`: its name, media type and contents.
const FILES: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../dashboard/style.css")),
    ("main.js", JS, include_str!("../../dashboard/js/main.js")),
    ("api.js", JS, include_str!("../../dashboard/js/api.js")),
    ("dom.js", JS, include_str!("../../dashboard/js/dom.js")),
    ("jobs.js", JS, include_str!("../../dashboard/js/jobs.js")),
    ("submit.js", JS, include_str!("../../dashboard/js/submit.js")),
    ("job.js", JS, include_str!("../../dashboard/js/job.js")),
    ("task.js", JS, include_str!("../../dashboard/js/task.js")),
    ("fleet.js", JS, include_str!("../../dashboard/js/fleet.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../../dashboard/favicon.svg")),
];

const JS: &str = "text/javascript; charset=utf-8";
const PAGE: &str = include_str!("../../dashboard/index.html");

/// `GET /`: the dashboard's page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "the dashboard's page", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    answer("text/html; charset=utf-8", PAGE)
}

/// `GET /ui/{file}`: one of the dashboard's files.
#[utoipa::path(get, path = "/ui/{file}", tag = "dashboard", params(("file" = String, Path, description = "the file's name, such as `main.js`")),
    responses((status = 200, description = "the file: a script (`text/javascript`), the style sheet (`text/css`) or the icon (`image/svg+xml`)"),
        (status = 404, description = "no such file: `{\"error\": {\"code\", \"message\"}}`", body = super::error::ErrorBody)))]
pub async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, media, body)| answer(media, body))
        .ok_or_else(|| ApiError::not_found(format!("the dashboard has no file {name:?}")))
}

fn answer(media: &'static str, body: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, media),
        // Revalidated on every load: an upgraded host serves its own files.
        (CACHE_CONTROL, "no-cache"),
        (HeaderName::from_static("content-security-policy"), POLICY),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every script and style the page or a script names is served.
    #[test]
    fn every_imported_file_is_served() {
        let served: Vec<&str> = FILES.iter().map(|(n, _, _)| *n).collect();
        let sources = FILES.iter().map(|(_, _, body)| *body).chain([PAGE]);
        for source in sources {
            for quoted in source.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css")) {
                let name = quoted.trim_start_matches("/ui/").trim_start_matches("./");
                assert!(served.contains(&name), "{quoted} is named but not served");
            }
        }
    }
}
