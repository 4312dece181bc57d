//! Operational endpoints: `/healthz` (alive), `/readyz` (ready to serve: the log answers
//! and every source is connected), `/metrics` (Prometheus text) and `/stats` (per-topic
//! subscribers and retained events, and each source's counters, JSON).
//! With `auth.stats = "admin"`, the last two need a token with `herald.admin: true`.

use std::sync::Arc;

use herald_bus::Bus;
use herald_postgres::SourceStatus;
use serde_json::json;
use warp::{Filter, Rejection, Reply, filters::BoxedFilter, reply::Response};

use super::request::{Caller, Gate, caller, running};
use crate::{
    app::App,
    config::StatsAccess,
    error::{ApiError, ErrorCode},
    metrics::Metrics,
    sources::{self, Sources},
};

/// What the operational endpoints read of the server.
#[derive(Debug, Clone)]
struct Ops {
    bus: Bus,
    sources: Arc<Sources>,
    metrics: Metrics,
}

pub(crate) fn routes(
    app: &App,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    let ops = Ops {
        bus: app.bus.clone(),
        sources: app.sources.clone(),
        metrics: app.metrics.clone(),
    };
    let with_ops = warp::any().map(move || ops.clone());
    let gate = Gate::new(app);
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let readyz = warp::path("readyz")
        .and(warp::path::end())
        .and(running(gate.clone()))
        .and(with_ops.clone())
        .then(|ops: Ops| async move {
            // Ready means the log answers (a shared log that cannot be reached is not) and
            // every source is connected.
            if let Err(e) = ops.bus.stats().await {
                return ApiError::from(e).into_response();
            }
            readiness(&ops.sources.statuses())
        });
    let admin = admin(gate, app.config.auth.stats).and(with_ops);
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(admin.clone())
        .and_then(|ops: Ops| async move {
            let stats = ops.bus.stats().await.map_err(reject)?;
            let text = ops.metrics.render(stats.topics.len());
            let content_type = "text/plain; version=0.0.4; charset=utf-8";
            Ok::<_, Rejection>(
                warp::reply::with_header(text, "content-type", content_type).into_response(),
            )
        });
    let stats = warp::path("stats")
        .and(warp::path::end())
        .and(admin)
        .and_then(|ops: Ops| async move {
            let stats = ops.bus.stats().await.map_err(reject)?;
            let topics: Vec<_> = stats
                .topics
                .iter()
                .map(|t| json!({"topic": t.topic, "subscribers": t.subscribers, "retained": t.retained}))
                .collect();
            let sources: Vec<_> = ops.sources.statuses().iter().map(sources::stats).collect();
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

fn reject(e: herald_bus::LogError) -> Rejection {
    warp::reject::custom(ApiError::from(e))
}

/// The opening of `/metrics` and `/stats`: open to all, or with `auth.stats = "admin"`
/// only to a token with `herald.admin`.
fn admin(gate: Gate, access: StatsAccess) -> BoxedFilter<()> {
    match access {
        StatsAccess::Open => running(gate).boxed(),
        StatsAccess::Admin => caller(gate)
            .and_then(|caller: Caller| async move {
                if caller.identity.admin {
                    Ok(())
                } else {
                    Err(warp::reject::custom(ApiError::bare(ErrorCode::AdminOnly)))
                }
            })
            .untuple_one()
            .boxed(),
    }
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
                "error": {"code": ErrorCode::SourceNotConnected.as_str(), "message": message},
                "sources": sources,
            });
            warp::reply::with_status(
                warp::reply::json(&body),
                ErrorCode::SourceNotConnected.status(),
            )
            .into_response()
        }
    }
}
