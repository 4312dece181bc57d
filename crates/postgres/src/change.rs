//! [`Change`]: one change as the installed triggers describe it
//! (`{"schema","table","op","key","row","at"}`), read from its JSON payload, and the
//! text of its scalar values. The mapping and the templates both read changes through it.

use serde_json::Value;

use crate::MapError;

/// A parsed change, borrowing from its JSON payload.
#[derive(Debug)]
pub(crate) struct Change<'a> {
    pub(crate) schema: Option<&'a str>,
    pub(crate) table: &'a str,
    /// Lower case.
    pub(crate) op: String,
    pub(crate) key: &'a Value,
    /// `None` when a truncated notification left the row out.
    pub(crate) row: Option<&'a Value>,
}

impl<'a> Change<'a> {
    /// Reads a change, checking the required fields.
    pub(crate) fn parse(payload: &'a Value) -> Result<Self, MapError> {
        let fields = payload.as_object().ok_or(MapError::MissingField("table"))?;
        let text = |name: &'static str| match fields.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            _ => Err(MapError::MissingField(name)),
        };
        let table = text("table")?;
        let op = text("op")?.to_ascii_lowercase();
        let schema = match fields.get("schema") {
            None | Some(Value::Null) => None,
            Some(_) => Some(text("schema")?),
        };
        let truncated = match fields.get("truncated") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(MapError::MissingField("truncated")),
        };
        let row = match fields.get("row") {
            Some(row) if !row.is_null() => Some(row),
            _ if truncated => None,
            _ => return Err(MapError::MissingField("row")),
        };
        static NULL: Value = Value::Null;
        Ok(Self {
            schema,
            table,
            op,
            key: fields.get("key").unwrap_or(&NULL),
            row,
        })
    }

    /// A column of the row; of a composite key when the row was left out.
    pub(crate) fn column(&self, name: &str) -> Option<&'a Value> {
        match self.row {
            Some(row) => row.get(name),
            None => self.key.as_object().and_then(|key| key.get(name)),
        }
    }
}

/// A scalar JSON value as text: strings as they are, numbers and booleans as written;
/// `None` for null, arrays and objects.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
