//! `GET /events?topic=SEL&topic=SEL…`: a subscription as a Server-Sent Events stream.

use std::time::SystemTime;

use herald_bus::{Resume, Selector, Subscription};
use herald_sse::EventStream;
use warp::{Filter, Rejection, http::HeaderMap, reply::Response};

use crate::{
    app::App,
    error::ApiError,
    query::{Query, query},
};

pub(crate) fn route(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("events")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::any().map(move || app.clone()))
        .and(warp::header::headers_cloned())
        .and(query())
        .and(herald_sse::resume())
        .and_then(
            |app: App, headers: HeaderMap, query: Query, resume: Resume| async move {
                subscribe(&app, &headers, &query, resume).map_err(warp::reject::custom)
            },
        )
}

fn subscribe(
    app: &App,
    headers: &HeaderMap,
    query: &Query,
    resume: Resume,
) -> Result<Response, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::shutting_down());
    }
    let identity = app.auth().authenticate(headers, query)?;
    let selectors = selectors(query, app.config().limits.max_selectors)?;
    if let Some(refused) = identity.subscribe.refused(&selectors) {
        return Err(ApiError::new(
            warp::http::StatusCode::FORBIDDEN,
            "forbidden_topic",
            format!("not allowed to subscribe to {refused}"),
        ));
    }
    let connection = app.open_connection(identity.user.as_ref())?;
    let mut subscription = Subscription::new(selectors).with_resume(resume);
    if let Some(user) = identity.user {
        subscription = subscription.with_user(user);
    }
    let subscriber = app.bus().subscribe(subscription)?;
    tracing::debug!(connection = %subscriber.connection(), "stream opened");
    let mut stream = EventStream::new(subscriber, app.stream_options());
    if let Some(expires) = identity.expires {
        // The stream ends when the token does; the client must come back with a new one.
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        stream = stream.until(tokio::time::Instant::now() + left);
    }
    Ok(herald_sse::reply(connection.stream(stream)))
}

/// The `topic` parameters as selectors, without duplicates.
fn selectors(query: &Query, max: usize) -> Result<Vec<Selector>, ApiError> {
    let mut selectors: Vec<Selector> = Vec::new();
    for raw in query.all("topic") {
        let selector = Selector::new(raw).map_err(|e| {
            ApiError::bad_request("invalid_selector", format!("topic {raw:?}: {e}"))
        })?;
        if !selectors.contains(&selector) {
            selectors.push(selector);
        }
        if selectors.len() > max {
            return Err(ApiError::too_large(
                "too_many_selectors",
                format!("a subscription may have at most {max} selectors"),
            ));
        }
    }
    if selectors.is_empty() {
        return Err(ApiError::bad_request(
            "missing_topic",
            "give at least one `topic` query parameter, e.g. /events?topic=orders.>",
        ));
    }
    Ok(selectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_validated_deduplicated_and_limited() {
        let ok = selectors(&Query::parse("topic=a.*&topic=b&topic=a.*"), 2).unwrap();
        assert_eq!(ok.len(), 2);
        let err = selectors(&Query::parse("topic=a..b"), 2).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                "invalid_selector",
                "topic \"a..b\": segment 2 of \"a..b\" is empty"
            )
        );
        assert_eq!(
            selectors(&Query::parse("topic=a&topic=b&topic=c"), 2)
                .unwrap_err()
                .code,
            "too_many_selectors"
        );
        assert_eq!(
            selectors(&Query::parse(""), 2).unwrap_err().code,
            "missing_topic"
        );
    }
}
