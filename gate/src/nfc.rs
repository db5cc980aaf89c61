//! The reader on real hardware through nfc1 and its vendored libnfc: PC/SC
//! readers (`pcsc:`), PN532 boards on a serial port (`pn532_uart:`) and
//! ACR122 readers over USB (`acr122_usb:`), chosen by libnfc connstring.

use crate::gate::Transceiver;
use nfc1::{BaudRate, Modulation, ModulationType, Timeout};
use std::time::{Duration, Instant};

/// A response APDU is at most 256 bytes and a status word; libnfc wants room.
const RX_LEN: usize = 264;

/// How often the reader is polled for a phone.
const POLL: Duration = Duration::from_millis(50);

/// Why the reader failed.
#[derive(Debug, thiserror::Error)]
pub enum NfcError {
    /// libnfc reported an error.
    #[error("libnfc: {0}")]
    Libnfc(#[from] nfc1::Error),
    /// A PC/SC reader that pcscd does not list (PC/SC readers are listed
    /// whether or not a card is in the field).
    #[error("no reader {connstring}; libnfc sees {listed:?}")]
    NotListed {
        /// The connstring asked for.
        connstring: String,
        /// The connstrings libnfc lists.
        listed: Vec<String>,
    },
}

/// An NFC reader in initiator mode.
///
/// The device handle is reopened when it goes stale. A PC/SC reader's
/// handle is bound to the card that was present when it was opened: once
/// that phone leaves, every call on it fails with an I/O error until the
/// reader is opened again, which is what a gate needs before the next phone.
pub struct NfcReader {
    // Dropped before the context it was opened from.
    device: Option<nfc1::Device>,
    context: nfc1::Context,
    // The connstring the reader was first opened with: reopening takes the
    // same reader even when the caller named none.
    connstring: String,
    name: String,
}

impl std::fmt::Debug for NfcReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcReader")
            .field("connstring", &self.connstring)
            .field("open", &self.device.is_some())
            .finish_non_exhaustive()
    }
}

/// libnfc's version string.
pub fn libnfc_version() -> &'static str {
    nfc1::version()
}

/// The connstrings of readers libnfc can see.
pub fn list_readers() -> Result<Vec<String>, NfcError> {
    let mut context = nfc1::Context::new()?;
    Ok(context.list_devices(16)?)
}

impl NfcReader {
    fn open_device(context: &mut nfc1::Context, connstring: Option<&str>) -> Result<nfc1::Device, NfcError> {
        let mut device = match connstring {
            Some(c) => context.open_with_connstring(c)?,
            None => context.open()?,
        };
        device.initiator_init()?;
        Ok(device)
    }

    /// The reader named by `connstring` (or the first one libnfc lists),
    /// opened now if it can be and otherwise at the first poll of
    /// [`wait_for_card`](Self::wait_for_card). A PC/SC reader opens only
    /// with a card in its field, and a gate must be up, its screen showing
    /// and its mesh caught up, before the first phone comes. A PC/SC reader
    /// that pcscd does not list is an error at once.
    pub fn open_when_ready(connstring: Option<&str>) -> Result<Self, NfcError> {
        let mut context = nfc1::Context::new()?;
        match Self::open_device(&mut context, connstring) {
            Ok(device) => {
                let (connstring, name) = (device.connstring().to_owned(), device.name().to_owned());
                Ok(Self { device: Some(device), context, connstring, name })
            }
            Err(e) => {
                let listed = context.list_devices(16)?;
                let connstring = match connstring {
                    Some(c) => c.to_owned(),
                    None => listed.first().cloned().ok_or(nfc1::Error::NoDeviceFound)?,
                };
                // Serial readers are not listed, and libnfc takes a PC/SC
                // reader's index (`pcsc:0`) as well as its name.
                let pcsc_by_name = connstring.strip_prefix("pcsc:").is_some_and(|n| n.len() >= 5);
                if pcsc_by_name && !listed.contains(&connstring) {
                    return Err(NfcError::NotListed { connstring, listed });
                }
                tracing::info!(%connstring, error = %e, "reader not open yet; opening it when a phone comes");
                Ok(Self { device: None, context, name: connstring.clone(), connstring })
            }
        }
    }

    /// The reader's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The connstring it was opened with.
    pub fn connstring(&self) -> String {
        self.connstring.clone()
    }

    /// Waits for an ISO 14443-A target (a phone in card emulation) until
    /// `deadline`, calling `idle` between polls (the mesh is served there).
    /// Returns whether one was selected.
    ///
    /// A reader that fails (a stale PC/SC handle, a USB reader unplugged)
    /// is closed and opened again at the next poll, so the gate keeps
    /// waiting for phones instead of stopping: no error ends the wait.
    pub fn wait_for_card(&mut self, deadline: Option<Instant>, idle: &mut dyn FnMut()) -> bool {
        let modulation = Modulation { modulation_type: ModulationType::Iso14443a, baud_rate: BaudRate::Baud106 };
        loop {
            if self.device.is_none() {
                match Self::open_device(&mut self.context, Some(&self.connstring)) {
                    Ok(device) => {
                        self.name = device.name().to_owned();
                        self.device = Some(device);
                    }
                    Err(e) => tracing::debug!(error = %e, "reader not open yet; retrying"),
                }
            }
            if let Some(device) = self.device.as_mut() {
                match device.initiator_select_passive_target(&modulation) {
                    Ok(_) => return true,
                    Err(nfc1::Error::NoSuchDeviceFound | nfc1::Error::Timeout | nfc1::Error::DeviceNotSupported) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "reader failed; reopening it");
                        self.device = None;
                    }
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            idle();
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the card leaves the field (or `max` passes), so one
    /// phone held still is not examined twice.
    pub fn wait_for_removal(&mut self, max: Duration) {
        let until = Instant::now() + max;
        while Instant::now() < until {
            let Some(device) = self.device.as_mut() else { return };
            if device.initiator_target_is_present_any().is_err() {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Transceiver for NfcReader {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        let device = self.device.as_mut().ok_or("the reader is closed")?;
        device
            .initiator_transceive_bytes(command, RX_LEN, Timeout::Duration(Duration::from_secs(2)))
            .map_err(|e| e.to_string())
    }
}
