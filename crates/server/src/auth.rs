//! Who is calling and what they may do.
//!
//! In `auth.mode = "none"` (development) everyone may do everything and `?user=` names the
//! subscriber. In `"jwt"` mode every request needs a token (see `jwt`), found by
//! `credentials`; identity comes only from the token.

mod credentials;
mod jwt;

use std::time::SystemTime;

use herald_bus::{Selector, UserId};
use warp::http::HeaderMap;

pub(crate) use jwt::{JwtAuth, TokenRequest, mint};

use crate::{
    error::{ApiError, ErrorCode},
    query::Query,
};

/// The caller of one request, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user events may be scoped to; `None` for anonymous callers.
    pub(crate) user: Option<UserId>,
    pub(crate) subscribe: Grant,
    pub(crate) publish: Grant,
    /// May read `/metrics` and `/stats` when they are admin-only.
    pub(crate) admin: bool,
    /// When the credentials stop being valid: streams end then.
    pub(crate) expires: Option<SystemTime>,
    /// The token presented, which publish rate limits are kept per.
    pub(crate) credential: Option<String>,
}

/// Which selectors a caller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    All,
    /// Only selectors covered by one of these (from a token's claims).
    Only(Vec<Selector>),
}

impl Grant {
    /// The first of `requested` this grant does not cover.
    pub(crate) fn refused<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a Selector>,
    ) -> Option<&'a Selector> {
        match self {
            Self::All => None,
            Self::Only(allowed) => requested
                .into_iter()
                .find(|r| !allowed.iter().any(|a| a.covers(r))),
        }
    }
}

/// Authenticates requests according to the configured mode.
#[derive(Debug)]
pub(crate) enum Authenticator {
    /// No authentication (development).
    None,
    /// Tokens; `cookie` is the cookie a token may come in.
    Jwt {
        verifier: Box<JwtAuth>,
        cookie: String,
    },
}

impl Authenticator {
    /// The identity behind a request.
    ///
    /// # Errors
    ///
    /// `401 missing_token` / `invalid_token` in jwt mode; `400` for a `?user=` that is
    /// invalid (none mode) or present at all (jwt mode: identity comes from the token).
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        query: &Query,
    ) -> Result<Identity, ApiError> {
        match self {
            Self::None => {
                let user = query
                    .first("user")
                    .map(|u| {
                        UserId::new(u)
                            .map_err(|e| ApiError::new(ErrorCode::InvalidUser, e.to_string()))
                    })
                    .transpose()?;
                Ok(Identity {
                    user,
                    subscribe: Grant::All,
                    publish: Grant::All,
                    admin: true,
                    expires: None,
                    credential: None,
                })
            }
            Self::Jwt { verifier, cookie } => {
                if query.first("user").is_some() {
                    return Err(ApiError::bare(ErrorCode::UserParamNotAllowed));
                }
                let token = credentials::token(headers, query, cookie).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::MissingToken,
                        format!("send a token as `Authorization: Bearer`, `?access_token=` or the `{cookie}` cookie"),
                    )
                })?;
                let mut identity = verifier.verify(token)?;
                identity.credential = Some(token.to_owned());
                Ok(identity)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_mode_takes_the_user_from_the_query() {
        let auth = Authenticator::None;
        let id = auth
            .authenticate(&HeaderMap::new(), &Query::parse("topic=a&user=42"))
            .unwrap();
        assert_eq!(id.user.unwrap().as_str(), "42");
        assert_eq!(id.subscribe, Grant::All);
        let err = auth
            .authenticate(&HeaderMap::new(), &Query::parse("user="))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidUser);
    }

    #[test]
    fn grants_check_coverage() {
        let s = |p: &str| Selector::new(p).unwrap();
        let grant = Grant::Only(vec![s("users.42.>")]);
        let ok = [s("users.42.n"), s("users.42.*")];
        assert_eq!(grant.refused(&ok), None);
        let bad = [s("users.42.n"), s("users.*")];
        assert_eq!(grant.refused(&bad), Some(&bad[1]));
        assert_eq!(Grant::All.refused(&bad), None);
        assert_eq!(Grant::Only(vec![]).refused(&ok), Some(&ok[0]));
    }
}
