//! JSON Web Tokens: verification with keys and algorithms from the configuration (never
//! from the token), and minting of development tokens.
//!
//! Claims: `sub` is the user; `exp` is required; `nbf`, `aud` and `iss` are checked when
//! present or configured. Permissions are selector lists, either nested as Mercure does
//! (`"herald": {"subscribe": [...], "publish": [...], "admin": true}`) or as flat dotted
//! keys (`"herald.subscribe": [...]`). A missing list grants nothing.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail};
use herald_bus::{Selector, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::{Grant, Identity};
use crate::{
    config,
    error::{ApiError, ErrorCode},
};

/// Verifies tokens.
pub(crate) struct JwtAuth {
    keys: HashMap<Algorithm, DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Permissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscribe: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    publish: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    admin: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default)]
    herald: Permissions,
    #[serde(rename = "herald.subscribe", default, skip_serializing)]
    flat_subscribe: Option<Vec<String>>,
    #[serde(rename = "herald.publish", default, skip_serializing)]
    flat_publish: Option<Vec<String>>,
    #[serde(rename = "herald.admin", default, skip_serializing)]
    flat_admin: Option<bool>,
}

impl JwtAuth {
    /// Keys and validation rules from `[auth]`.
    pub(crate) fn from_config(auth: &config::Auth) -> anyhow::Result<Self> {
        let mut algorithms = Vec::new();
        let mut keys = HashMap::new();
        for name in &auth.algorithms {
            let alg: Algorithm = name
                .parse()
                .map_err(|_| anyhow::anyhow!("auth.algorithms: unknown algorithm {name:?}"))?;
            let key = match alg {
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                    let secret = auth
                        .hs256_secret
                        .as_deref()
                        .context("auth.algorithms has HS*, so set auth.hs256_secret")?;
                    if secret.len() < 32 {
                        bail!("auth.hs256_secret must be at least 32 bytes");
                    }
                    DecodingKey::from_secret(secret.as_bytes())
                }
                Algorithm::RS256 | Algorithm::ES256 => {
                    let path = auth
                        .public_key_pem
                        .as_deref()
                        .context("auth.algorithms has RS256/ES256, so set auth.public_key_pem")?;
                    let pem = std::fs::read(path)
                        .with_context(|| format!("cannot read auth.public_key_pem {path}"))?;
                    let key = if alg == Algorithm::RS256 {
                        DecodingKey::from_rsa_pem(&pem)
                    } else {
                        DecodingKey::from_ec_pem(&pem)
                    };
                    key.with_context(|| format!("{path} is not a PEM public key for {name}"))?
                }
                other => {
                    bail!("auth.algorithms: {other:?} is not supported (use HS256, RS256 or ES256)")
                }
            };
            algorithms.push(alg);
            keys.insert(alg, key);
        }
        if algorithms.is_empty() {
            bail!("auth.algorithms is empty");
        }
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = auth.leeway_secs;
        // Valid strictly before `exp + leeway`, the moment its streams end (see `verify`),
        // so a client reconnecting at that moment is refused, not given a stream that
        // ends at once.
        validation.reject_tokens_expiring_in_less_than = 1;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &auth.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &auth.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        Ok(Self { keys, validation })
    }

    /// The identity `token` proves.
    ///
    /// # Errors
    ///
    /// `401 invalid_token` saying why: expired, not valid yet, bad signature, algorithm
    /// not accepted, wrong audience or issuer, malformed, or bad claims.
    pub(crate) fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        let invalid =
            |why: &str| ApiError::new(ErrorCode::InvalidToken, format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let key = self
            .keys
            .get(&header.alg)
            .ok_or_else(|| invalid("algorithm not accepted"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| {
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "expired",
                    ErrorKind::ImmatureSignature => "not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm => "algorithm not accepted",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::MissingRequiredClaim(_) => "a required claim (exp, sub) is missing",
                    _ => "malformed",
                })
            })?
            .claims;
        let user = UserId::new(&claims.sub).map_err(|_| invalid("sub is not a valid user id"))?;
        let grant = |nested: Option<Vec<String>>, flat: Option<Vec<String>>, name: &str| {
            let selectors = nested.or(flat).unwrap_or_default();
            selectors
                .iter()
                .map(|s| Selector::new(s))
                .collect::<Result<Vec<_>, _>>()
                .map(Grant::Only)
                .map_err(|e| invalid(&format!("claim herald.{name}: {e}")))
        };
        // A signed `exp` can be any u64: past what a clock can represent, refuse it
        // rather than overflow.
        let expires = UNIX_EPOCH
            .checked_add(Duration::from_secs(
                claims.exp.saturating_add(self.validation.leeway),
            ))
            .ok_or_else(|| invalid("exp is past any representable time"))?;
        Ok(Identity {
            user: Some(user),
            subscribe: grant(claims.herald.subscribe, claims.flat_subscribe, "subscribe")?,
            publish: grant(claims.herald.publish, claims.flat_publish, "publish")?,
            admin: claims.herald.admin || claims.flat_admin.unwrap_or(false),
            expires: Some(expires),
            credential: None,
        })
    }
}

/// What `herald token` puts in a development token.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    pub(crate) sub: String,
    pub(crate) subscribe: Vec<String>,
    pub(crate) publish: Vec<String>,
    pub(crate) admin: bool,
    pub(crate) ttl: Duration,
}

/// Signs an HS256 token for `grant` with `secret`.
pub(crate) fn mint(secret: &str, grant: &TokenRequest) -> anyhow::Result<String> {
    for selector in grant.subscribe.iter().chain(&grant.publish) {
        Selector::new(selector).with_context(|| format!("selector {selector:?}"))?;
    }
    UserId::new(&grant.sub).context("--sub")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs();
    let claims = Claims {
        sub: grant.sub.clone(),
        exp: now + grant.ttl.as_secs(),
        iat: Some(now),
        herald: Permissions {
            subscribe: Some(grant.subscribe.clone()),
            publish: Some(grant.publish.clone()),
            admin: grant.admin,
        },
        flat_subscribe: None,
        flat_publish: None,
        flat_admin: None,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing the token")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth() -> JwtAuth {
        let config = config::Auth {
            mode: config::AuthMode::Jwt,
            hs256_secret: Some(SECRET.to_owned()),
            ..config::Auth::default()
        };
        JwtAuth::from_config(&config).unwrap()
    }

    fn grant(ttl: Duration) -> TokenRequest {
        TokenRequest {
            sub: "42".into(),
            subscribe: vec!["users.42.>".into()],
            publish: vec![],
            admin: false,
            ttl,
        }
    }

    #[test]
    fn minted_tokens_verify_with_their_grants() {
        let token = mint(SECRET, &grant(Duration::from_secs(60))).unwrap();
        let id = auth().verify(&token).unwrap();
        assert_eq!(id.user.unwrap().as_str(), "42");
        assert_eq!(
            id.subscribe,
            Grant::Only(vec![Selector::new("users.42.>").unwrap()])
        );
        assert_eq!(id.publish, Grant::Only(vec![]));
        assert!(!id.admin);
    }

    #[test]
    fn bad_tokens_say_why() {
        let why = |token: &str| auth().verify(token).unwrap_err().message;
        let token = mint(SECRET, &grant(Duration::from_secs(60))).unwrap();
        // Flip a character in the middle of the signature: the last one's low bits are
        // base64 padding, so changing it may change nothing.
        let middle = token.rfind('.').unwrap() + 10;
        let mut tampered = token.clone().into_bytes();
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(why(&tampered), "invalid token: bad signature");
        assert_eq!(why("garbage"), "invalid token: malformed");
        assert_eq!(why(&token[..token.len() / 2]), "invalid token: malformed");
        let other = mint(
            "another secret that is long enough!!",
            &grant(Duration::from_secs(60)),
        )
        .unwrap();
        assert_eq!(why(&other), "invalid token: bad signature");
    }

    /// A token signed with `SECRET` whose `exp` is `exp`.
    fn expiring_at(exp: u64) -> String {
        let claims = serde_json::json!({"sub": "42", "exp": exp});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn an_exp_past_any_representable_time_is_refused_not_a_panic() {
        for exp in [u64::MAX, 1 << 63, (1 << 63) - 1] {
            let err = auth().verify(&expiring_at(exp)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidToken, "exp {exp}");
            assert_eq!(
                err.message, "invalid token: exp is past any representable time",
                "exp {exp}"
            );
        }
        let far = auth().verify(&expiring_at(1 << 62)).unwrap();
        assert!(far.expires.unwrap() > SystemTime::now());
    }

    #[test]
    fn short_secrets_and_unknown_algorithms_are_config_errors() {
        let short = config::Auth {
            hs256_secret: Some("short".into()),
            ..config::Auth::default()
        };
        assert!(
            JwtAuth::from_config(&short)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        let unknown = config::Auth {
            algorithms: vec!["none".into()],
            ..config::Auth::default()
        };
        assert!(JwtAuth::from_config(&unknown).is_err());
        let no_key = config::Auth {
            algorithms: vec!["RS256".into()],
            ..config::Auth::default()
        };
        assert!(
            JwtAuth::from_config(&no_key)
                .unwrap_err()
                .to_string()
                .contains("public_key_pem")
        );
    }
}
