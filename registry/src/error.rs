//! The API's one error type: an HTTP status, a stable code, a message.
//! Refused input is always a 4xx; only a failing database is a 5xx.

use crate::store::StoreError;
use crate::wire::ErrorBody;
use tessera_core::DecodeError;
use tessera_core::verify::Rejection;

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    /// 400: malformed input.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    /// 401: missing or bad authentication.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(401, code, message)
    }
    /// 403: authenticated, not allowed.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }
    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }
    /// 409: conflicts with registered state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    /// 422: well-formed but refused by the verifier or a rule.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }
    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.code.to_owned(), message: self.message.clone() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InsufficientFunds { .. } => Self::new(402, "insufficient_funds", e.to_string()),
            StoreError::NoteNotSpendable(_) => Self::conflict("note_not_spendable", e.to_string()),
            StoreError::NotActive(_) => Self::conflict("not_active", e.to_string()),
            StoreError::DuplicateReference(_) => Self::conflict("duplicate", e.to_string()),
            StoreError::BagReused { .. } => Self::conflict("bag_reused", e.to_string()),
            StoreError::AlreadySettled(_) => Self::conflict("already_settled", e.to_string()),
            StoreError::SaleChanged(_) => Self::conflict("sale_changed", e.to_string()),
            StoreError::UnknownInstrument(_) => Self::not_found("unknown_instrument", e.to_string()),
            StoreError::Backend(_) | StoreError::Corrupt(_) | StoreError::TooNew { .. } => {
                tracing::error!(error = %e, "store failure");
                Self::new(503, "storage_unavailable", "the registry's database failed; retry later")
            }
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::TooLarge { .. } => Self::new(413, "too_large", e.to_string()),
            _ => Self::bad_request("malformed_cbor", e.to_string()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(e: Rejection) -> Self {
        Self::unprocessable("rejected", e.to_string())
    }
}
