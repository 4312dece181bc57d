//! [`ErrorCode`]: every error code the HTTP API answers with, its status, and what it
//! means. This table is the one place a code is defined; `docs/api.md` lists each one,
//! and a test fails when a code is missing there.

use std::time::Duration;

use warp::http::StatusCode;

/// Declares the codes: variant, wire name, status, and the sentence `docs/api.md` and a
/// bare error (one with no detail to add) say.
macro_rules! codes {
    ($($variant:ident = $name:literal, $status:ident, $summary:literal;)+) => {
        /// An error code of the HTTP API: the `code` of `{"error": {"code", "message"}}`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum ErrorCode {
            $(
                #[doc = $summary]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            #[cfg(test)]
            pub(crate) const ALL: &[Self] = &[$(Self::$variant),+];

            /// The code as it appears on the wire, in `snake_case`.
            pub(crate) const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The HTTP status answered with this code.
            pub(crate) const fn status(self) -> StatusCode {
                match self {
                    $(Self::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means, in one sentence.
            pub(crate) const fn summary(self) -> &'static str {
                match self {
                    $(Self::$variant => $summary,)+
                }
            }
        }
    };
}

codes! {
    BadRequest = "bad_request", BAD_REQUEST, "the request is malformed in a way no other code names";
    BadBody = "bad_body", BAD_REQUEST, "the request body could not be read";
    InvalidJson = "invalid_json", BAD_REQUEST, "the body is not JSON";
    InvalidEvent = "invalid_event", BAD_REQUEST, "an event's field is missing, unknown or invalid";
    EmptyBatch = "empty_batch", BAD_REQUEST, "a batch needs at least one event";
    MissingTopic = "missing_topic", BAD_REQUEST, "a subscription needs at least one topic";
    InvalidSelector = "invalid_selector", BAD_REQUEST, "a selector is malformed";
    InvalidUser = "invalid_user", BAD_REQUEST, "the user id is empty, too long, or has control characters";
    UserParamNotAllowed = "user_param_not_allowed", BAD_REQUEST, "`user` cannot be chosen in jwt mode: the token's `sub` is the user";
    MissingToken = "missing_token", UNAUTHORIZED, "jwt mode: the request carries no token";
    InvalidToken = "invalid_token", UNAUTHORIZED, "jwt mode: the token is expired, not yet valid, badly signed, of an algorithm not accepted, or malformed";
    ForbiddenTopic = "forbidden_topic", FORBIDDEN, "the token's claims do not cover this topic";
    AdminOnly = "admin_only", FORBIDDEN, "this endpoint needs a token with herald.admin";
    CorsForbidden = "cors_forbidden", FORBIDDEN, "the request's origin, method or headers are not allowed by the CORS settings";
    NotFound = "not_found", NOT_FOUND, "no such route";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "method not allowed on this route";
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE, "the request body is over limits.max_body_bytes";
    EventTooLarge = "event_too_large", PAYLOAD_TOO_LARGE, "an event is over limits.max_event_bytes";
    TooManySelectors = "too_many_selectors", PAYLOAD_TOO_LARGE, "a subscription has more than limits.max_selectors selectors";
    BatchOverBurst = "batch_over_burst", PAYLOAD_TOO_LARGE, "a batch is larger than limits.publish_burst";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "over the publish rate limit";
    TooManyConnections = "too_many_connections", TOO_MANY_REQUESTS, "the server holds limits.max_connections connections";
    TooManyUserConnections = "too_many_user_connections", TOO_MANY_REQUESTS, "the user holds limits.max_connections_per_user connections";
    ShuttingDown = "shutting_down", SERVICE_UNAVAILABLE, "the server is shutting down";
    LogUnavailable = "log_unavailable", SERVICE_UNAVAILABLE, "the log cannot be reached: nothing was stored";
    SourceNotConnected = "source_not_connected", SERVICE_UNAVAILABLE, "a PostgreSQL source is not connected";
    OutcomeUnknown = "outcome_unknown", GATEWAY_TIMEOUT, "the log did not answer in time: the event may or may not be stored";
}

impl ErrorCode {
    /// When a client should try again after this code, if it should: answered as
    /// `Retry-After`. An error may say otherwise ([`ApiError::retry_after`]).
    ///
    /// [`ApiError::retry_after`]: super::ApiError::retry_after
    pub(crate) const fn retry_after(self) -> Option<Duration> {
        match self {
            Self::ShuttingDown | Self::LogUnavailable | Self::RateLimited => {
                Some(Duration::from_secs(1))
            }
            Self::TooManyConnections | Self::TooManyUserConnections => Some(Duration::from_secs(5)),
            _ => None,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API reference, which must list every code with its status.
    const API_DOCS: &str = include_str!("../../../../docs/api.md");

    #[test]
    fn every_code_is_documented_with_its_status() {
        let missing: Vec<_> = ErrorCode::ALL
            .iter()
            .filter(|code| !documented(code))
            .map(|code| format!("{} {}", code.status().as_u16(), code.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/api.md has no row `| <status> | `<code>` |` for: {missing:?}"
        );
    }

    /// Whether a table row of `docs/api.md` names `code` under its status.
    fn documented(code: &ErrorCode) -> bool {
        let name = format!("`{}`", code.as_str());
        let status = code.status().as_u16().to_string();
        API_DOCS.lines().any(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let (Some(statuses), Some(codes)) = (cells.next(), cells.next()) else {
                return false;
            };
            statuses.contains(&status) && codes.contains(&name)
        })
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(!code.summary().is_empty());
        }
    }
}
