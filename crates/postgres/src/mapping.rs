//! [`Mapping`]: how a change (`{"table","op","key","row","at"}`) becomes a [`Draft`].

use herald_bus::{Audience, Draft, EventName, Topic, UserId};
use serde_json::Value;

use crate::{
    Error, Ident, MapError, TableName, Template,
    change::{Change, scalar_text},
};

/// What an event's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DataShape {
    /// The whole change: `{"schema","table","op","key","row","at"}`, with
    /// `"truncated": true` and no `row` when a notification had to leave it out.
    #[default]
    Change,
    /// Only the row (the old row for a delete). A truncated change has no row, so its
    /// event carries the whole change instead, `"truncated": true` included: the client
    /// sees it must refetch.
    Row,
}

/// How a change becomes an event: the topic and event-type templates, the data, and
/// the column that makes an event user-scoped.
///
/// A change is the JSON object the installed triggers produce:
/// `{"schema", "table", "op", "key", "row", "at"}`, plus `"truncated": true` when a
/// notification would not fit in 8,000 bytes and the row was left out. `table` and `op`
/// are required; `row` is required unless `truncated` is true; the rest is optional.
///
/// # Examples
///
/// ```
/// use herald_bus::Audience;
/// use herald_postgres::Mapping;
/// use serde_json::json;
///
/// let mapping = Mapping::new("db.{table}.{op}")?
///     .with_event("{op}")?
///     .with_user_column("user_id");
/// let change = json!({
///     "table": "orders", "op": "insert", "key": 7,
///     "row": {"id": 7, "user_id": 42, "total": 30}, "at": "2024-05-01T10:00:00Z"
/// });
/// let draft = mapping.to_draft(change.clone())?;
/// assert_eq!(draft.topic().as_str(), "db.orders.insert");
/// assert!(matches!(draft.audience(), Audience::User(u) if u.as_str() == "42"));
/// assert_eq!(draft.data().to_json(), change);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mapping {
    topic: Template,
    event: Option<Template>,
    user_column: Option<String>,
    data: DataShape,
    tables: Vec<TableName>,
}

impl Mapping {
    /// A mapping to the topic `topic` (a [`Template`]), with no event type, for
    /// everyone, with the whole change as data.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when the template cannot be parsed.
    pub fn new(topic: &str) -> Result<Self, Error> {
        Ok(Self {
            topic: Template::new(topic)?,
            event: None,
            user_column: None,
            data: DataShape::Change,
            tables: Vec::new(),
        })
    }

    /// Sets the event-type template (SSE `event:` field), such as `{op}`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] when the template cannot be parsed.
    pub fn with_event(mut self, event: &str) -> Result<Self, Error> {
        self.event = Some(Template::new(event)?);
        Ok(self)
    }

    /// Makes every event user-scoped: only the user named by this column of the row
    /// receives it. A change without a usable value in that column is a bad payload,
    /// never an event for everyone.
    pub fn with_user_column(mut self, column: impl Into<String>) -> Self {
        self.user_column = Some(column.into());
        self
    }

    /// Sets what the event's data is.
    pub fn with_data(mut self, shape: DataShape) -> Self {
        self.data = shape;
        self
    }

    /// Names the tables this mapping expects, so [`Mapping::known_topics`] can list the
    /// topics a template of `{schema}`, `{table}` and `{op}` produces before any change
    /// arrives (the notify source sends its reconnect notice there).
    pub fn with_tables(mut self, tables: impl IntoIterator<Item = TableName>) -> Self {
        self.tables = tables.into_iter().collect();
        self
    }

    /// The topic template.
    pub fn topic(&self) -> &Template {
        &self.topic
    }

    /// The event-type template, if any.
    pub fn event(&self) -> Option<&Template> {
        self.event.as_ref()
    }

    /// The user column, if events are user-scoped.
    pub fn user_column(&self) -> Option<&str> {
        self.user_column.as_deref()
    }

    /// Turns one change into a draft.
    ///
    /// # Errors
    ///
    /// A [`MapError`] when the change lacks a field, a placeholder or the user column has
    /// no usable value, or the result is not a valid topic, event type or user id.
    pub fn to_draft(&self, payload: Value) -> Result<Draft, MapError> {
        let (topic, name, audience, truncated) = {
            let change = Change::parse(&payload)?;
            let topic = self.topic.render(&change)?;
            let topic = Topic::new(&topic).map_err(MapError::Topic)?;
            let name = match &self.event {
                Some(event) => {
                    Some(EventName::new(&event.render(&change)?).map_err(MapError::EventName)?)
                }
                None => None,
            };
            let audience = match &self.user_column {
                Some(column) => {
                    let user = change
                        .column(column)
                        .and_then(scalar_text)
                        .ok_or_else(|| MapError::MissingValue(format!("user column {column:?}")))?;
                    Audience::User(UserId::new(&user).map_err(MapError::User)?)
                }
                None => Audience::Everyone,
            };
            (topic, name, audience, change.row.is_none())
        };
        let data = match (self.data, truncated) {
            (DataShape::Row, false) => match payload {
                Value::Object(mut fields) => fields.remove("row").unwrap_or_default(),
                other => other,
            },
            _ => payload,
        };
        let mut draft = Draft::new(topic, data).with_audience(audience);
        if let Some(name) = name {
            draft = draft.with_name(name);
        }
        Ok(draft)
    }

    /// The topics this mapping produces for the tables given to
    /// [`Mapping::with_tables`] and every operation, when the topic template uses only
    /// `{schema}`, `{table}` and `{op}`; for a template without placeholders, its one
    /// topic. Empty when the topics depend on rows.
    ///
    /// ```
    /// use herald_postgres::{Mapping, TableName};
    ///
    /// let mapping = Mapping::new("db.{table}.{op}")?.with_tables([TableName::parse("shop.orders")?]);
    /// let topics: Vec<String> = mapping.known_topics().iter().map(|t| t.to_string()).collect();
    /// assert_eq!(topics, ["db.orders.insert", "db.orders.update", "db.orders.delete"]);
    /// # Ok::<(), herald_postgres::Error>(())
    /// ```
    pub fn known_topics(&self) -> Vec<Topic> {
        if self.tables.is_empty() && self.topic.uses_table() {
            return Vec::new();
        }
        // Without tables the template uses none, so any stand-in renders the same.
        let stand_in = [TableName::new(None, Ident::new("_").expect("a valid name"))];
        let tables = if self.tables.is_empty() {
            &stand_in[..]
        } else {
            &self.tables[..]
        };
        let null = Value::Null;
        let mut topics: Vec<Topic> = Vec::new();
        for table in tables {
            for op in ["insert", "update", "delete"] {
                let change = Change {
                    schema: table.schema().map(Ident::as_str),
                    table: table.name().as_str(),
                    op: op.to_owned(),
                    key: &null,
                    row: None,
                };
                // Fails when the topic needs a key, a row, or a schema the table lacks.
                let rendered = self.topic.render(&change).ok();
                if let Some(topic) = rendered.and_then(|t| Topic::new(&t).ok())
                    && !topics.contains(&topic)
                {
                    topics.push(topic);
                }
            }
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(row: Value) -> Value {
        json!({"schema": "shop", "table": "orders", "op": "UPDATE", "key": 7, "row": row, "at": "t"})
    }

    #[test]
    fn maps_topic_event_and_data() {
        let mapping = Mapping::new("db.{table}.{op}")
            .unwrap()
            .with_event("row.{op}")
            .unwrap();
        let draft = mapping.to_draft(change(json!({"id": 7}))).unwrap();
        assert_eq!(draft.topic().as_str(), "db.orders.update");
        let event = draft.clone().into_event(herald_bus::EventId::new(1, 1), 0);
        assert_eq!(event.name().map(|n| n.as_str()), Some("row.update"));
        assert_eq!(draft.data().to_json(), change(json!({"id": 7})));
        assert_eq!(draft.audience(), &Audience::Everyone);
    }

    #[test]
    fn row_shape_keeps_only_the_row_unless_truncated() {
        let mapping = Mapping::new("db.{table}")
            .unwrap()
            .with_data(DataShape::Row);
        let draft = mapping.to_draft(change(json!({"id": 7}))).unwrap();
        assert_eq!(draft.data().to_json(), json!({"id": 7}));
        let truncated = json!({"table": "orders", "op": "insert", "key": 7, "truncated": true});
        let draft = mapping.to_draft(truncated.clone()).unwrap();
        assert_eq!(draft.data().to_json(), truncated);
    }

    #[test]
    fn user_column_scopes_or_refuses() {
        let mapping = Mapping::new("db.{table}")
            .unwrap()
            .with_user_column("user_id");
        let draft = mapping.to_draft(change(json!({"user_id": "u1"}))).unwrap();
        assert!(matches!(draft.audience(), Audience::User(u) if u.as_str() == "u1"));
        // Never broadcast a user's row because the user is unknown.
        for row in [json!({}), json!({"user_id": null}), json!({"user_id": [1]})] {
            assert!(matches!(
                mapping.to_draft(change(row)),
                Err(MapError::MissingValue(_))
            ));
        }
        let truncated = json!({"table": "orders", "op": "insert", "key": 7, "truncated": true});
        assert!(mapping.to_draft(truncated).is_err());
        let with_key = json!({"table": "t", "op": "insert", "key": {"id": 1, "user_id": 9}, "truncated": true});
        let draft = mapping.to_draft(with_key).unwrap();
        assert!(matches!(draft.audience(), Audience::User(u) if u.as_str() == "9"));
    }

    #[test]
    fn bad_payloads_are_errors() {
        let mapping = Mapping::new("db.{table}.{op}").unwrap();
        let err = |v: Value| mapping.to_draft(v).unwrap_err();
        assert_eq!(err(json!("text")), MapError::MissingField("table"));
        assert_eq!(
            err(json!({"op": "insert", "row": {}})),
            MapError::MissingField("table")
        );
        assert_eq!(
            err(json!({"table": "t", "row": {}})),
            MapError::MissingField("op")
        );
        assert_eq!(
            err(json!({"table": "t", "op": "insert"})),
            MapError::MissingField("row")
        );
        assert!(matches!(
            err(json!({"table": "a b", "op": "insert", "row": {}})),
            MapError::BadValue { .. }
        ));
        let long = Mapping::new("db.{table}.{row.x}").unwrap();
        let x = "y".repeat(300);
        assert!(matches!(
            long.to_draft(json!({"table": "t", "op": "insert", "row": {"x": x}})),
            Err(MapError::Topic(_))
        ));
    }

    #[test]
    fn known_topics_only_when_rows_do_not_matter() {
        let tables = [
            TableName::parse("a").unwrap(),
            TableName::parse("s.b").unwrap(),
        ];
        let per_table = Mapping::new("db.{table}.{op}")
            .unwrap()
            .with_tables(tables.clone());
        assert_eq!(per_table.known_topics().len(), 6);
        let fixed = Mapping::new("db.changes").unwrap();
        assert_eq!(fixed.known_topics(), [Topic::new("db.changes").unwrap()]);
        let per_op = Mapping::new("db.{op}").unwrap();
        assert_eq!(per_op.known_topics().len(), 3);
        let unknown_tables = Mapping::new("db.{table}").unwrap();
        assert!(unknown_tables.known_topics().is_empty());
        let schema_needed = Mapping::new("db.{schema}.{table}")
            .unwrap()
            .with_tables(tables);
        assert_eq!(
            schema_needed.known_topics(),
            [Topic::new("db.s.b").unwrap()]
        );
        let per_row = Mapping::new("db.{table}.{row.id}").unwrap();
        assert!(per_row.known_topics().is_empty());
    }
}
