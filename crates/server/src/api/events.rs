//! `GET /events?topic=SEL&topic=SEL…`: a subscription as a Server-Sent Events stream.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::SystemTime,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use herald_bus::{Bus, Resume, Selector, Subscription};
use herald_sse::{EventStream, StreamOptions};
use prometheus::IntCounter;
use warp::{Filter, Rejection, reply::Response};

use super::request::{Caller, Gate, caller};
use crate::{
    app::App,
    error::{ApiError, ErrorCode},
    limits::{ConnectionLimits, ConnectionSlot},
    query::Query,
};

/// What a subscription needs of the server.
#[derive(Debug, Clone)]
struct Streams {
    bus: Bus,
    options: StreamOptions,
    connections: ConnectionLimits,
    max_selectors: usize,
    bytes_sent: IntCounter,
}

pub(crate) fn route(
    app: &App,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone + use<> {
    let streams = Streams {
        bus: app.bus.clone(),
        options: app.stream_options,
        connections: app.connections.clone(),
        max_selectors: app.config.limits.max_selectors,
        bytes_sent: app.metrics.bytes_sent.clone(),
    };
    warp::path("events")
        .and(warp::path::end())
        .and(warp::get())
        .and(caller(Gate::new(app)))
        .and(herald_sse::resume())
        .and_then(move |caller: Caller, resume: Resume| {
            let answer = subscribe(&streams, caller, resume);
            async move { answer.map_err(warp::reject::custom) }
        })
}

fn subscribe(streams: &Streams, caller: Caller, resume: Resume) -> Result<Response, ApiError> {
    let selectors = selectors(&caller.query, streams.max_selectors)?;
    let identity = caller.identity;
    if let Some(refused) = identity.subscribe.refused(&selectors) {
        return Err(ApiError::new(
            ErrorCode::ForbiddenTopic,
            format!("not allowed to subscribe to {refused}"),
        ));
    }
    let slot = streams.connections.open(identity.user.as_ref())?;
    let mut subscription = Subscription::new(selectors).with_resume(resume);
    if let Some(user) = identity.user {
        subscription = subscription.with_user(user);
    }
    let subscriber = streams.bus.subscribe(subscription)?;
    tracing::debug!(connection = %subscriber.connection(), "stream opened");
    let mut stream = EventStream::new(subscriber, &streams.options);
    if let Some(expires) = identity.expires {
        // The stream ends when the token does; the client must come back with a new one.
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        // Past what the monotonic clock can represent, the token outlives the process.
        if let Some(deadline) = tokio::time::Instant::now().checked_add(left) {
            stream = stream.until(deadline);
        }
    }
    Ok(herald_sse::reply(Metered {
        stream,
        bytes_sent: streams.bytes_sent.clone(),
        _slot: slot,
    }))
}

/// An SSE body that counts what it sends and holds its connection's slot until dropped.
#[derive(Debug)]
struct Metered {
    stream: EventStream,
    bytes_sent: IntCounter,
    _slot: ConnectionSlot,
}

impl Stream for Metered {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let item = self.stream.poll_next_unpin(cx);
        if let Poll::Ready(Some(bytes)) = &item {
            self.bytes_sent.inc_by(bytes.len() as u64);
        }
        item
    }
}

/// The `topic` parameters as selectors, without duplicates.
fn selectors(query: &Query, max: usize) -> Result<Vec<Selector>, ApiError> {
    let mut selectors: Vec<Selector> = Vec::new();
    for raw in query.all("topic") {
        let selector = Selector::new(raw).map_err(|e| {
            ApiError::new(ErrorCode::InvalidSelector, format!("topic {raw:?}: {e}"))
        })?;
        if !selectors.contains(&selector) {
            selectors.push(selector);
        }
        if selectors.len() > max {
            return Err(ApiError::new(
                ErrorCode::TooManySelectors,
                format!("a subscription may have at most {max} selectors"),
            ));
        }
    }
    if selectors.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MissingTopic,
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
                ErrorCode::InvalidSelector,
                "topic \"a..b\": segment 2 of \"a..b\" is empty"
            )
        );
        assert_eq!(
            selectors(&Query::parse("topic=a&topic=b&topic=c"), 2)
                .unwrap_err()
                .code,
            ErrorCode::TooManySelectors
        );
        assert_eq!(
            selectors(&Query::parse(""), 2).unwrap_err().code,
            ErrorCode::MissingTopic
        );
    }
}
