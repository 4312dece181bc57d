//! The opening every API route shares, written once and in one order: refuse while the
//! server shuts down, then authenticate the caller. What a route then charges to the
//! caller's limits (a connection, publish tokens) goes through the [`Caller`] it gets.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use warp::{Filter, Rejection, http::HeaderMap};

use crate::{
    app::{App, Stopping},
    auth::{Authenticator, Identity},
    error::{ApiError, ErrorCode},
    limits::RateLimiter,
    query::{Query, query},
};

/// The client's address, set on every request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

/// Who sent a request, once it passed the opening.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) identity: Identity,
    pub(crate) query: Query,
    /// The client's address, when the request came through the accept loop.
    pub(crate) remote: Option<SocketAddr>,
}

impl Caller {
    /// Takes `events` from the caller's publish rate: per token, or per client address
    /// when there are no tokens (auth mode none).
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::take`].
    pub(crate) fn charge_publish(&self, rate: &RateLimiter, events: usize) -> Result<(), ApiError> {
        match &self.identity.credential {
            Some(token) => rate.take(token, events),
            None => rate.take(self.remote.map(|a| a.ip()), events),
        }
    }
}

/// What the opening checks, taken from the [`App`].
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    stopping: Stopping,
    auth: Arc<Authenticator>,
}

impl Gate {
    pub(crate) fn new(app: &App) -> Self {
        Self {
            stopping: app.stopping.clone(),
            auth: app.auth.clone(),
        }
    }

    /// `503 shutting_down` once the server stops.
    pub(crate) fn refuse_when_stopping(&self) -> Result<(), ApiError> {
        if self.stopping.is_set() {
            Err(ApiError::bare(ErrorCode::ShuttingDown))
        } else {
            Ok(())
        }
    }

    fn open(
        &self,
        headers: HeaderMap,
        query: Query,
        remote: Option<SocketAddr>,
    ) -> Result<Caller, ApiError> {
        self.refuse_when_stopping()?;
        let identity = self.auth.authenticate(&headers, &query)?;
        Ok(Caller {
            identity,
            query,
            remote,
        })
    }
}

/// The opening of an authenticated route: `503` while shutting down, then the caller's
/// identity (`401`/`400` when authentication fails).
pub(crate) fn caller(gate: Gate) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(query())
        .and(client_addr())
        .and_then(move |headers, query, remote| {
            let opened = gate.open(headers, query, remote);
            async move { opened.map_err(warp::reject::custom) }
        })
}

/// The opening of a route that needs no identity (`/readyz`): `503` while shutting down.
pub(crate) fn running(gate: Gate) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::any()
        .and_then(move || {
            let open = gate.refuse_when_stopping();
            async move { open.map_err(warp::reject::custom) }
        })
        .untuple_one()
}

fn client_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|a| a.0))
}
