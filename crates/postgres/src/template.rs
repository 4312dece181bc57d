//! [`Template`]: the text that turns a change into a topic or an event type, such as
//! `db.{table}.{op}`.

use std::{fmt, str::FromStr};

use serde_json::Value;

use crate::{
    Error, MapError,
    change::{Change, scalar_text},
};

/// A topic or event-type template: literal text with placeholders.
///
/// Placeholders: `{schema}`, `{table}`, `{op}` (`insert`, `update`, `delete`, lower
/// case), `{key}` (the key; a composite key's values in column-name order, joined by
/// `:`), and `{row.<column>}` (a column of the row, or of a composite key when the row
/// was left out of a truncated notification). Literal text may use the topic
/// characters `A-Z a-z 0-9 _ : - .`.
///
/// Every value put in must be one topic segment (`A-Z a-z 0-9 _ : -`, no dot), so a
/// row can never add segments to a topic: `users.{row.user_id}` cannot become
/// `users.42.admin`. A change that breaks this is a bad payload.
///
/// # Examples
///
/// ```
/// use herald_postgres::Template;
///
/// let template = Template::new("db.{table}.{op}")?;
/// assert_eq!(template.as_str(), "db.{table}.{op}");
/// assert!(Template::new("db.{tabel}").is_err());
/// assert!(Template::new("db/{table}").is_err());
/// # Ok::<(), herald_postgres::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Schema,
    Table,
    Op,
    Key,
    Row(String),
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] for an empty template, an unknown placeholder, an unclosed
    /// `{`, a stray `}`, or a literal character that can be in no topic.
    pub fn new(text: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::Template {
            template: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("it is empty".to_owned()));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after
                    .find('}')
                    .ok_or_else(|| fail("a `{` is not closed".to_owned()))?;
                let name = &after[..end];
                parts.push(match name {
                    "schema" => Part::Schema,
                    "table" => Part::Table,
                    "op" => Part::Op,
                    "key" => Part::Key,
                    _ => match name.strip_prefix("row.") {
                        Some(column) if !column.is_empty() && !column.contains('{') => {
                            Part::Row(column.to_owned())
                        }
                        _ => {
                            return Err(fail(format!(
                                "unknown placeholder {{{name}}}; use {{schema}}, {{table}}, \
                                 {{op}}, {{key}} or {{row.<column>}}"
                            )));
                        }
                    },
                });
                rest = &after[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if let Some(ch) = literal.chars().find(|&c| !is_literal_char(c)) {
                    return Err(fail(format!(
                        "the character {ch:?} can be in no topic (A-Z a-z 0-9 _ : - .)"
                    )));
                }
                parts.push(Part::Literal(literal.to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template uses `{table}` or `{schema}`.
    pub(crate) fn uses_table(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Table | Part::Schema))
    }

    /// Renders the template for `change`.
    pub(crate) fn render(&self, change: &Change<'_>) -> Result<String, MapError> {
        let mut out = String::with_capacity(self.text.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Schema => {
                    let schema = change.schema.ok_or_else(|| missing("{schema}"))?;
                    push_segment(&mut out, "{schema}", schema)?;
                }
                Part::Table => push_segment(&mut out, "{table}", change.table)?,
                Part::Op => push_segment(&mut out, "{op}", &change.op)?,
                Part::Key => {
                    let key = key_text(change.key).ok_or_else(|| missing("{key}"))?;
                    push_segment(&mut out, "{key}", &key)?;
                }
                Part::Row(column) => {
                    let placeholder = || format!("{{row.{column}}}");
                    let value = change
                        .column(column)
                        .and_then(scalar_text)
                        .ok_or_else(|| MapError::MissingValue(placeholder()))?;
                    push_segment(&mut out, &placeholder(), &value)?;
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl FromStr for Template {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')
}

fn is_segment(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
}

fn missing(placeholder: &str) -> MapError {
    MapError::MissingValue(placeholder.to_owned())
}

fn push_segment(out: &mut String, placeholder: &str, value: &str) -> Result<(), MapError> {
    if !is_segment(value) {
        return Err(MapError::BadValue {
            placeholder: placeholder.to_owned(),
            value: value.chars().take(80).collect(),
        });
    }
    out.push_str(value);
    Ok(())
}

/// A key as text: a scalar as [`scalar_text`]; a composite key (an object) as its
/// values in column-name order joined by `:`.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::Object(columns) if !columns.is_empty() => {
            let mut names: Vec<&String> = columns.keys().collect();
            names.sort();
            let values: Option<Vec<String>> =
                names.iter().map(|n| scalar_text(&columns[*n])).collect();
            Some(values?.join(":"))
        }
        other => scalar_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change<'a>(key: &'a Value, row: Option<&'a Value>) -> Change<'a> {
        Change {
            schema: Some("shop"),
            table: "orders",
            op: "insert".to_owned(),
            key,
            row,
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let key = json!(7);
        let row = json!({"user_id": 42, "status": "paid", "vip": true});
        let t = Template::new("db.{schema}.{table}.{op}.{key}.{row.user_id}.{row.vip}").unwrap();
        assert_eq!(
            t.render(&change(&key, Some(&row))).unwrap(),
            "db.shop.orders.insert.7.42.true"
        );
    }

    #[test]
    fn composite_keys_join_in_column_order() {
        let key = json!({"b": "x", "a": 1});
        let t = Template::new("k.{key}").unwrap();
        assert_eq!(t.render(&change(&key, None)).unwrap(), "k.1:x");
    }

    #[test]
    fn truncated_changes_fall_back_to_key_columns() {
        let key = json!({"id": 7, "user_id": "u1"});
        let t = Template::new("users.{row.user_id}").unwrap();
        assert_eq!(t.render(&change(&key, None)).unwrap(), "users.u1");
    }

    #[test]
    fn values_cannot_add_segments() {
        let key = json!(1);
        let row = json!({"user_id": "42.admin", "empty": "", "nested": {"a": 1}});
        let t = |s: &str| Template::new(s).unwrap().render(&change(&key, Some(&row)));
        assert!(matches!(
            t("u.{row.user_id}"),
            Err(MapError::BadValue { .. })
        ));
        assert!(matches!(t("u.{row.empty}"), Err(MapError::BadValue { .. })));
        assert_eq!(
            t("u.{row.nested}"),
            Err(MapError::MissingValue("{row.nested}".into()))
        );
        assert_eq!(
            t("u.{row.absent}"),
            Err(MapError::MissingValue("{row.absent}".into()))
        );
    }

    #[test]
    fn missing_schema_and_key_are_reported() {
        let null = Value::Null;
        let mut c = change(&null, None);
        c.schema = None;
        let t = |s: &str| Template::new(s).unwrap().render(&c);
        assert_eq!(
            t("{schema}"),
            Err(MapError::MissingValue("{schema}".into()))
        );
        assert_eq!(t("{key}"), Err(MapError::MissingValue("{key}".into())));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = |s: &str| Template::new(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("db.{table").contains("not closed"));
        assert!(err("db.{nope}").contains("unknown placeholder {nope}"));
        assert!(err("db.{row.}").contains("unknown placeholder"));
        assert!(err("db.{table}}").contains("'}'"));
        assert!(err("db {table}").contains("' '"));
    }
}
