//! Who an event is for: everyone, one user, or one connection.

use std::{fmt, str::FromStr, sync::Arc};

use uuid::Uuid;

use crate::error::{NameError, excerpt};

/// The id of an authenticated user, as it comes from a token's `sub` claim.
///
/// 1–255 bytes without control characters.
///
/// ```
/// use herald_bus::UserId;
///
/// assert_eq!(UserId::new("42")?.as_str(), "42");
/// assert!(UserId::new("").is_err());
/// assert!(UserId::new("a\nb").is_err());
/// # Ok::<(), herald_bus::NameError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Validates `id` as a user id.
    ///
    /// # Errors
    ///
    /// [`NameError::UserId`] if it is empty, over 255 bytes, or has a control character.
    pub fn new(id: &str) -> Result<Self, NameError> {
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            return Err(NameError::UserId { id: excerpt(id) });
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UserId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The id of one subscriber connection, drawn at random when it connects.
///
/// ```
/// use herald_bus::ConnectionId;
///
/// let id = ConnectionId::random();
/// assert_eq!(id.to_string().parse::<ConnectionId>().unwrap(), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(Uuid);

impl ConnectionId {
    /// A new random (v4) connection id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for ConnectionId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for ConnectionId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Who may receive an event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every subscriber whose selectors match the topic.
    #[default]
    Everyone,
    /// Only subscribers authenticated as this user.
    User(UserId),
    /// Only this one connection.
    Connection(ConnectionId),
}

impl Audience {
    /// Whether a subscriber with this identity belongs to the audience.
    ///
    /// ```
    /// use herald_bus::{Audience, ConnectionId, UserId};
    ///
    /// let alice = UserId::new("alice")?;
    /// let conn = ConnectionId::random();
    /// assert!(Audience::Everyone.includes(None, conn));
    /// assert!(Audience::User(alice.clone()).includes(Some(&alice), conn));
    /// assert!(!Audience::User(alice).includes(None, conn));
    /// assert!(Audience::Connection(conn).includes(None, conn));
    /// assert!(!Audience::Connection(conn).includes(None, ConnectionId::random()));
    /// # Ok::<(), herald_bus::NameError>(())
    /// ```
    pub fn includes(&self, user: Option<&UserId>, connection: ConnectionId) -> bool {
        match self {
            Self::Everyone => true,
            Self::User(u) => user == Some(u),
            Self::Connection(c) => *c == connection,
        }
    }
}
