//! `GET /console`: the built-in web console (DESIGN.md "Console"). Static files only, embedded
//! in the binary (`assets.rs`); the page signs in with an API key kept in the tab's session
//! storage and calls the public API, so it shows exactly what that key may see. Nothing is
//! fetched from elsewhere: the Content-Security-Policy allows this origin only.

pub mod assets;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Scripts, styles, images and API calls from this origin only; no inline script or style, no
/// plugin, no framing, no `<base>` rewriting, forms posting nowhere else.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' \
    data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Hashed names never change content: a year, and no revalidation.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn router() -> Router<AppState> {
    // Hashing at start-up, not on the first visit.
    let _ = &*assets::ASSETS;
    Router::new()
        .route("/console", axum::routing::get(index))
        .route("/console/", axum::routing::get(index))
        .route("/console/assets/{file}", axum::routing::get(asset))
}

fn common_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

async fn index() -> Response {
    (
        common_headers(),
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page names the current hashes: asked again every time.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        assets::ASSETS.index.clone(),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::ASSETS.files.get(&file) {
        Some(a) => (
            common_headers(),
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, IMMUTABLE),
            ],
            a.body.clone(),
        )
            .into_response(),
        None => ApiError::NotFound(format!("console asset `{file}`")).into_response(),
    }
}
