//! Canonical encoding: deterministic CBOR with explicit field indices.
//!
//! Every wire structure is a CBOR array whose elements appear in index order
//! (see `docs/protocol.md`). A top-level message is framed as
//! `[FORMAT_VERSION, message]`. Decoding is strict: the input must fit the
//! type's size bound, must hold exactly one message, and must re-encode to
//! the very same bytes. So there is exactly one encoding of every value, and
//! what is signed is what is sent.

use minicbor::{Decode, Encode};

/// The encoding version every top-level message starts with.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes from outside were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the bound for this message type; it was not parsed.
    #[error("{what} is {len} bytes, over the {max}-byte bound")]
    TooLarge {
        /// The message type.
        what: &'static str,
        /// The input's length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The input is not a well-formed message of this type.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The message type.
        what: &'static str,
        /// What the decoder saw.
        reason: String,
    },
    /// The message is framed with a format version this build does not know.
    #[error("{what} uses format version {found}, this build reads version {FORMAT_VERSION}")]
    UnsupportedVersion {
        /// The message type.
        what: &'static str,
        /// The version found.
        found: u64,
    },
    /// Bytes follow the message.
    #[error("{what} is followed by {extra} unexpected bytes")]
    TrailingBytes {
        /// The message type.
        what: &'static str,
        /// How many bytes follow.
        extra: usize,
    },
    /// The value decoded but is not in its one canonical encoding.
    #[error("{what} is not canonically encoded")]
    NonCanonical {
        /// The message type.
        what: &'static str,
    },
}

/// Encodes any derivable value to bytes. Writing into a `Vec` cannot fail.
pub(crate) fn to_vec<T: Encode<()>>(value: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    // Encoding into a Vec<u8> has an infallible writer; the only errors
    // minicbor can raise come from a type's own encode, which ours never do.
    if minicbor::encode(value, &mut buf).is_err() {
        buf.clear();
    }
    buf
}

/// A message that crosses a trust boundary: framed, versioned, size-bounded.
pub trait Wire: Encode<()> + for<'b> Decode<'b, ()> + Sized {
    /// A short name used in errors.
    const NAME: &'static str;
    /// The largest encoding accepted from outside, in bytes.
    const MAX_LEN: usize;

    /// The canonical framed encoding.
    fn to_bytes(&self) -> Vec<u8> {
        to_vec(&(FORMAT_VERSION, self))
    }

    /// Decodes bytes from outside, refusing anything but the canonical
    /// encoding of one message within the size bound.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::TooLarge { what: Self::NAME, len: bytes.len(), max: Self::MAX_LEN });
        }
        let malformed = |e: minicbor::decode::Error| DecodeError::Malformed { what: Self::NAME, reason: e.to_string() };
        let mut decoder = minicbor::Decoder::new(bytes);
        match decoder.array().map_err(malformed)? {
            Some(2) => {}
            _ => {
                return Err(DecodeError::Malformed {
                    what: Self::NAME,
                    reason: "expected a [version, message] frame".into(),
                });
            }
        }
        let version = decoder.u64().map_err(malformed)?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(DecodeError::UnsupportedVersion { what: Self::NAME, found: version });
        }
        let value: Self = decoder.decode().map_err(malformed)?;
        let extra = bytes.len() - decoder.position();
        if extra != 0 {
            return Err(DecodeError::TrailingBytes { what: Self::NAME, extra });
        }
        if value.to_bytes() != bytes {
            return Err(DecodeError::NonCanonical { what: Self::NAME });
        }
        Ok(value)
    }
}

/// Defines a fixed-length byte newtype, encoded as a CBOR byte string of
/// exactly that length and shown as lowercase hex.
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parses lowercase or uppercase hex of exactly the right length.
            pub fn from_hex(s: &str) -> Result<Self, $crate::codec::HexError> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s.trim(), &mut out).map_err(|_| $crate::codec::HexError {
                    what: stringify!($name),
                    expected: $len * 2,
                })?;
                Ok(Self(out))
            }
            /// Builds the value from a slice of exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::codec::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }

        impl<C> minicbor::Encode<C> for $name {
            fn encode<W: minicbor::encode::Write>(
                &self,
                e: &mut minicbor::Encoder<W>,
                _ctx: &mut C,
            ) -> Result<(), minicbor::encode::Error<W::Error>> {
                e.bytes(&self.0)?;
                Ok(())
            }
        }

        impl<'b, C> minicbor::Decode<'b, C> for $name {
            fn decode(d: &mut minicbor::Decoder<'b>, _ctx: &mut C) -> Result<Self, minicbor::decode::Error> {
                let bytes = d.bytes()?;
                Self::from_slice(bytes).ok_or_else(|| {
                    minicbor::decode::Error::message(concat!(stringify!($name), " has the wrong length"))
                })
            }
        }
    };
}
pub(crate) use fixed_bytes;

/// A hex string that does not spell a value of the expected length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {expected} hex digits")]
pub struct HexError {
    /// The type being parsed.
    pub what: &'static str,
    /// How many hex digits it takes.
    pub expected: usize,
}
