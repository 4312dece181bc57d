//! The web console: `GET /` serves a page to subscribe, watch events arrive, and publish,
//! for trying Herald out and debugging it from a browser.
//!
//! The page, its script and its stylesheet live in `crates/server/console/` and are
//! embedded in the binary with `include_str!`: nothing is fetched from elsewhere at run
//! time, and there is no build step. `console.enabled = false` turns the routes off, so
//! `/` answers `404 not_found` like any unknown route.
//!
//! The assets answer with `Cache-Control: no-cache` and an `ETag`: a browser revalidates
//! on every load and gets `304` until the binary changes, so an upgrade never leaves a
//! stale script behind. A strict `Content-Security-Policy` allows only this origin's own
//! script, style and requests, since the page handles tokens.

use std::sync::Arc;

use warp::{
    Filter, Reply,
    filters::BoxedFilter,
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

use crate::{app::App, config::AuthMode};

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const STYLE_CSS: &str = include_str!("../../console/style.css");

/// Placeholder in `index.html` for the server's auth mode, so the page shows the token
/// field in jwt mode and the `user` field in none mode.
const AUTH_MODE_SLOT: &str = "{{auth_mode}}";

/// No inline script or style, no other origin: the page holds tokens.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `GET /`, `GET /console/app.js` and `GET /console/style.css`, or nothing (every
/// request rejected as not found) when the console is turned off.
pub(crate) fn routes(app: &App) -> BoxedFilter<(Response,)> {
    if !app.config.console.enabled {
        return warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed();
    }
    let mode = match app.config.auth.mode {
        AuthMode::None => "none",
        AuthMode::Jwt => "jwt",
    };
    let index = Asset::new(
        INDEX_HTML.replace(AUTH_MODE_SLOT, mode),
        "text/html; charset=utf-8",
    );
    let script = Asset::new(APP_JS.to_owned(), "text/javascript; charset=utf-8");
    let style = Asset::new(STYLE_CSS.to_owned(), "text/css; charset=utf-8");
    // Path before method, so an unknown path stays a 404 and `POST /` is a 405.
    let page = warp::path::end().and(serve(index));
    let script = warp::path!("console" / "app.js").and(serve(script));
    let style = warp::path!("console" / "style.css").and(serve(style));
    page.or(script).unify().or(style).unify().boxed()
}

/// One embedded file and the validator browsers revalidate it with.
#[derive(Debug)]
struct Asset {
    body: String,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: String, content_type: &'static str) -> Arc<Self> {
        let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
        Arc::new(Self {
            body,
            content_type,
            etag,
        })
    }

    /// The file, or `304 Not Modified` when `if_none_match` names its current version.
    fn reply(&self, if_none_match: Option<&str>) -> Response {
        let fresh = if_none_match.is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == self.etag || t == "*")
        });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            self.body.clone().into_response()
        };
        let headers = response.headers_mut();
        let mut set = |name, value: &str| {
            headers.insert(
                name,
                HeaderValue::from_str(value).expect("static header values are valid"),
            );
        };
        set(header::CONTENT_TYPE, self.content_type);
        set(header::CACHE_CONTROL, "no-cache");
        set(header::ETAG, &self.etag);
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        set(header::REFERRER_POLICY, "no-referrer");
        set(header::CONTENT_SECURITY_POLICY, CSP);
        response
    }
}

fn serve(asset: Arc<Asset>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(warp::header::optional::<String>("if-none-match"))
        .map(move |tags: Option<String>| asset.reply(tags.as_deref()))
        .boxed()
}

/// FNV-1a, 64 bits: a content hash for the `ETag`, stable across builds of the same
/// bytes (unlike `DefaultHasher`, whose algorithm may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_reference_only_this_origin() {
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("//cdn") && !text.contains("@import"));
        }
        assert!(INDEX_HTML.contains(AUTH_MODE_SLOT));
        assert!(INDEX_HTML.contains("/console/app.js"));
        assert!(INDEX_HTML.contains("/console/style.css"));
    }

    #[test]
    fn etag_revalidation_answers_304() {
        let asset = Asset::new("body".to_owned(), "text/plain");
        assert_eq!(asset.reply(None).status(), StatusCode::OK);
        let tag = asset.etag.clone();
        let res = asset.reply(Some(&format!("\"other\", W/{tag}")));
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers()[header::ETAG], tag.as_str());
        assert_eq!(
            asset.reply(Some("\"other\"")).status(),
            StatusCode::OK,
            "a stale tag gets the body"
        );
    }
}
