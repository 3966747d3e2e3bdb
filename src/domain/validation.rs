//! Field-level validation errors, shared by every layer: a domain constructor answers
//! them, the API shows them (`[0].settings.message`: is required).

use serde::Serialize;

/// One field that does not satisfy the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error of one item of a batch, named by its place (`[1].status_id`).
    pub fn of_item(self, i: usize) -> Self {
        Self::new(format!("[{i}].{}", self.field), self.message)
    }
}

/// The longest name of anything, in characters.
pub const MAX_NAME: usize = 255;

/// A required name: trimmed, at most `MAX_NAME` characters.
pub fn name(field: &str, name: &str) -> Result<String, Vec<FieldError>> {
    let name = name.trim();
    if name.is_empty() {
        Err(vec![FieldError::new(field, "is required")])
    } else if name.chars().count() > MAX_NAME {
        Err(vec![FieldError::new(
            field,
            format!("is longer than {MAX_NAME} characters"),
        )])
    } else {
        Ok(name.to_owned())
    }
}
