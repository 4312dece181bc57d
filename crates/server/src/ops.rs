//! Operational endpoints: `/healthz` (alive), `/readyz` (ready to serve: the log answers
//! and every source is connected), `/metrics` (Prometheus text) and `/stats` (per-topic
//! subscribers and retained events, and each source's counters, JSON).
//! With `auth.stats = "admin"`, the last two need a token with `herald.admin: true`.

use herald_postgres::SourceStatus;
use serde_json::json;
use warp::{
    Filter, Rejection, Reply,
    filters::BoxedFilter,
    http::{HeaderMap, StatusCode},
    reply::Response,
};

use crate::{
    app::App,
    config::StatsAccess,
    error::ApiError,
    query::{Query, query},
    sources,
};

pub(crate) fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let readyz = warp::path("readyz")
        .and(warp::path::end())
        .and(with_app.clone())
        .then(|app: App| async move {
            if app.is_shutting_down() {
                return ApiError::shutting_down().into_response();
            }
            // Ready means the log answers (a shared log that cannot be reached is not) and
            // every source is connected.
            if let Err(e) = app.bus().stats().await {
                return unavailable(e).into_response();
            }
            readiness(&app.sources().statuses())
        });
    let admin = with_app
        .and(warp::header::headers_cloned())
        .and(query())
        .and_then(|app: App, headers: HeaderMap, query: Query| async move {
            admit(&app, &headers, &query)
                .map(|()| app)
                .map_err(warp::reject::custom)
        });
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(admin.clone())
        .and_then(|app: App| async move {
            let stats = app
                .bus()
                .stats()
                .await
                .map_err(|e| warp::reject::custom(unavailable(e)))?;
            let text =
                app.metrics()
                    .render(app.bus().metrics(), stats.topics.len(), app.redis_stats());
            let content_type = "text/plain; version=0.0.4; charset=utf-8";
            Ok::<_, Rejection>(
                warp::reply::with_header(text, "content-type", content_type).into_response(),
            )
        });
    let stats = warp::path("stats")
        .and(warp::path::end())
        .and(admin)
        .and_then(|app: App| async move {
            let stats = app.bus().stats().await.map_err(|e| warp::reject::custom(unavailable(e)))?;
            let topics: Vec<_> = stats
                .topics
                .iter()
                .map(|t| json!({"topic": t.topic, "subscribers": t.subscribers, "retained": t.retained}))
                .collect();
            let sources: Vec<_> = app.sources().statuses().iter().map(sources::stats).collect();
            let body = json!({"subscribers": stats.subscribers, "topics": topics, "sources": sources});
            Ok::<_, Rejection>(warp::reply::json(&body).into_response())
        });
    // Each path checks its method after matching, so an unknown path is a 404, not a 405.
    let get = |route: BoxedFilter<(Response,)>| route.and(warp::get()).boxed();
    get(healthz.boxed())
        .or(get(readyz.boxed()))
        .unify()
        .or(get(metrics.boxed()))
        .unify()
        .or(get(stats.boxed()))
        .unify()
}

/// `/readyz` once the log answered: 200 with every source, or 503 naming the first
/// source that is not connected, still listing them all.
fn readiness(statuses: &[SourceStatus]) -> Response {
    let sources: Vec<_> = statuses.iter().map(sources::readiness).collect();
    match sources::not_ready(statuses) {
        None => warp::reply::json(&json!({"status": "ready", "sources": sources})).into_response(),
        Some(message) => {
            let body = json!({
                "status": "not_ready",
                "error": {"code": "source_not_connected", "message": message},
                "sources": sources,
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}

/// Lets the caller through to `/metrics` and `/stats` under the configured access.
fn admit(app: &App, headers: &HeaderMap, query: &Query) -> Result<(), ApiError> {
    if app.config().auth.stats == StatsAccess::Open {
        return Ok(());
    }
    if app.auth().authenticate(headers, query)?.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_only",
            "this endpoint needs a token with herald.admin",
        ))
    }
}

fn unavailable(e: herald_bus::LogError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "log_unavailable",
        e.to_string(),
    )
}
