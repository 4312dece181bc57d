//! SQL names: [`Ident`] (one validated, always-quoted identifier) and [`TableName`]
//! (a table, optionally schema-qualified).
//!
//! Names reach SQL text (DDL, `LISTEN`, trigger arguments), so they are checked twice
//! over: only letters, digits, `_` and `-` are accepted, and they are always written as
//! quoted identifiers. Quoting keeps the name exact (case-sensitive, as in the catalog,
//! and safe for keywords such as `order` or `user`); the character rule keeps quotes,
//! `$`, backslashes, dots and spaces out, so no name can end a literal, a dollar-quoted
//! body or an identifier early.

use std::{fmt, str::FromStr};

use crate::Error;

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); longer ones are truncated
/// silently by the server, which Herald refuses to rely on.
pub const MAX_IDENT_LEN: usize = 63;

/// A validated SQL identifier: 1–63 bytes of letters, digits, `_` and `-`.
///
/// # Examples
///
/// ```
/// use herald_postgres::Ident;
///
/// let order = Ident::new("order")?;
/// assert_eq!(order.as_str(), "order");
/// assert_eq!(order.to_sql(), "\"order\"");
/// assert!(Ident::new("x\"; DROP TABLE users; --").is_err());
/// assert!(Ident::new("a.b").is_err());
/// # Ok::<(), herald_postgres::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(Box<str>);

impl Ident {
    /// Validates `name` as an identifier.
    ///
    /// # Errors
    ///
    /// [`Error::Name`] when it is empty, longer than [`MAX_IDENT_LEN`] bytes, or has a
    /// character other than a letter, a digit, `_` or `-`.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::name(name, "it is empty"));
        }
        if name.len() > MAX_IDENT_LEN {
            return Err(Error::name(name, "it is longer than 63 bytes"));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::name(
                name,
                "only letters, digits, `_` and `-` are accepted",
            ));
        }
        Ok(Self(name.into()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier: `"name"`.
    pub fn to_sql(&self) -> String {
        // The character rule excludes `"`, so there is nothing to double.
        format!("\"{}\"", self.0)
    }
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Ident {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

/// A table name, optionally qualified by its schema: `orders` or `shop.orders`.
///
/// An unqualified name is resolved with the session's `search_path` where it is used.
///
/// # Examples
///
/// ```
/// use herald_postgres::TableName;
///
/// let table = TableName::parse("shop.orders")?;
/// assert_eq!(table.to_sql(), r#""shop"."orders""#);
/// assert_eq!(table.to_string(), "shop.orders");
/// assert_eq!(TableName::parse("orders")?.to_sql(), r#""orders""#);
/// assert!(TableName::parse("a.b.c").is_err());
/// assert!(TableName::parse("orders; DROP TABLE users").is_err());
/// # Ok::<(), herald_postgres::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<Ident>,
    name: Ident,
}

impl TableName {
    /// A table `name`, in `schema` if given.
    pub fn new(schema: Option<Ident>, name: Ident) -> Self {
        Self { schema, name }
    }

    /// Parses `table` or `schema.table`.
    ///
    /// # Errors
    ///
    /// [`Error::Name`] when there are more than two parts or a part is not an [`Ident`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = text.split('.');
        let first = parts.next().unwrap_or_default();
        match (parts.next(), parts.next()) {
            (None, _) => Ok(Self::new(None, Ident::new(first)?)),
            (Some(name), None) => Ok(Self::new(Some(Ident::new(first)?), Ident::new(name)?)),
            (Some(_), Some(_)) => Err(Error::name(text, "expected `table` or `schema.table`")),
        }
    }

    /// The schema, if the name is qualified.
    pub fn schema(&self) -> Option<&Ident> {
        self.schema.as_ref()
    }

    /// The table's own name.
    pub fn name(&self) -> &Ident {
        &self.name
    }

    /// The name as SQL: `"schema"."table"` or `"table"`.
    pub fn to_sql(&self) -> String {
        qualified(self.schema.as_ref(), &self.name)
    }

    /// Another object in the same schema.
    pub(crate) fn sibling(&self, name: Ident) -> Self {
        Self::new(self.schema.clone(), name)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}.")?;
        }
        write!(f, "{}", self.name)
    }
}

impl FromStr for TableName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// `"schema"."name"`, or `"name"` without a schema.
pub(crate) fn qualified(schema: Option<&Ident>, name: &Ident) -> String {
    match schema {
        Some(schema) => format!("{}.{}", schema.to_sql(), name.to_sql()),
        None => name.to_sql(),
    }
}

/// `text` as an SQL string literal. Doubling `'` is enough: Herald never turns
/// `standard_conforming_strings` off, and only validated names reach here.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_are_refused() {
        for bad in [
            "",
            "a b",
            "a\"b",
            "a'b",
            "a$b",
            "a\\b",
            "a;b",
            "a\0b",
            "a\nb",
            "a.b",
            &"x".repeat(64),
        ] {
            assert!(Ident::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["orders", "Orders", "order_items-2", "été", &"x".repeat(63)] {
            assert!(Ident::new(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn names_are_always_quoted() {
        assert_eq!(Ident::new("User").unwrap().to_sql(), "\"User\"");
        let table = TableName::parse("s1.t1").unwrap();
        assert_eq!(table.to_sql(), "\"s1\".\"t1\"");
        let sibling = table.sibling(Ident::new("t2").unwrap());
        assert_eq!(sibling.to_sql(), "\"s1\".\"t2\"");
    }

    #[test]
    fn table_names_have_one_or_two_parts() {
        assert!(TableName::parse("").is_err());
        assert!(TableName::parse(".t").is_err());
        assert!(TableName::parse("s.").is_err());
        let t: TableName = "t".parse().unwrap();
        assert_eq!((t.schema(), t.name().as_str()), (None, "t"));
    }

    #[test]
    fn literals_double_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
