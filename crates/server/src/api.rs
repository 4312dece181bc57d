//! The HTTP API: the route table, and one module per endpoint family.
//!
//! - `request`: the opening every route shares (shutdown, then authentication) and the
//!   [`Caller`](request::Caller) it yields.
//! - `events`: `GET /events`, a subscription as an SSE stream.
//! - `publish`: `POST /publish`, one event or a batch.
//! - `ops`: `/healthz`, `/readyz`, `/metrics`, `/stats`.
//! - `console`: the web console at `/`.
//!
//! Every rejection becomes the JSON error of `crate::error`. How connections reach these
//! routes (HTTP/1.1, h2c, the lean streaming path) is `crate::serve`'s business.

mod console;
mod events;
mod ops;
mod publish;
mod request;

use warp::{Filter, Reply, filters::BoxedFilter, reply::Response};

pub(crate) use self::request::ClientAddr;
use crate::{app::App, error::recover};

/// Every route, answering every request with a response.
pub(crate) type Routes = BoxedFilter<(Response,)>;

/// Every route, with JSON errors and CORS as configured.
pub(crate) fn routes(app: &App) -> Routes {
    let api = events::route(app)
        .or(publish::route(app))
        .unify()
        .or(ops::routes(app))
        .unify()
        .or(console::routes(app))
        .unify()
        .recover(recover)
        .unify();
    let origins = &app.config.cors.allowed_origins;
    if origins.is_empty() {
        return api.boxed();
    }
    let mut cors = warp::cors()
        .allow_methods(["GET", "POST", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "last-event-id"])
        .allow_credentials(true);
    cors = if origins.iter().any(|o| o == "*") {
        cors.allow_any_origin()
    } else {
        cors.allow_origins(origins.iter().map(String::as_str))
    };
    // Recover twice: inside, so errors carry CORS headers; outside, for the CORS
    // filter's own refusals.
    api.with(cors)
        .map(Reply::into_response)
        .recover(recover)
        .unify()
        .boxed()
}
