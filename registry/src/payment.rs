//! Where top-up money comes from and where redemptions go.
//!
//! A real payment service plugs in by implementing [`PaymentProvider`]:
//! `charge` captures a payment the wallet authorised with the provider (the
//! `token` is the provider's payment id, so a retried top-up maps to the
//! same reference and is credited once), `pay_out` sends money to the
//! account holder's bank. The registry credits the account only after
//! `charge` returned, in one database transaction keyed by the reference.

use tessera_core::{Amount, PublicKey};

/// Why a payment failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider declined (card refused, token unknown).
    #[error("payment declined: {0}")]
    Declined(String),
    /// The provider could not be reached.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// A payment service.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug + 'static {
    /// Captures `amount` for `account`; returns the provider's unique
    /// reference for it (the same for a retried token).
    fn charge(&self, account: &PublicKey, amount: &Amount, token: &str) -> Result<String, PaymentError>;
    /// Pays `amount` out to `account`'s bank; returns a reference.
    fn pay_out(&self, account: &PublicKey, amount: &Amount, reference: &str) -> Result<String, PaymentError>;
}

/// Credits at once, for tests and the demo. Tokens must be 1–128 printable
/// characters; a token starting with `decline` is declined.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestPaymentProvider;

impl PaymentProvider for TestPaymentProvider {
    fn charge(&self, account: &PublicKey, amount: &Amount, token: &str) -> Result<String, PaymentError> {
        if token.is_empty() || token.len() > 128 || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(PaymentError::Declined("the token must be 1-128 printable characters".into()));
        }
        if token.starts_with("decline") {
            return Err(PaymentError::Declined(format!("test token {token}")));
        }
        Ok(format!("test:{}:{}:{}", account.to_hex(), amount.currency, token))
    }
    fn pay_out(&self, _account: &PublicKey, _amount: &Amount, reference: &str) -> Result<String, PaymentError> {
        Ok(format!("test-payout:{reference}"))
    }
}
