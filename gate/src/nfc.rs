//! The reader on real hardware through nfc1 and its vendored libnfc: PC/SC
//! readers (`pcsc:`), PN532 boards on a serial port (`pn532_uart:`) and
//! ACR122 readers over USB (`acr122_usb:`), chosen by libnfc connstring.

use crate::gate::Transceiver;
use nfc1::{BaudRate, Modulation, ModulationType, Timeout};
use std::time::{Duration, Instant};

/// A response APDU is at most 256 bytes and a status word; libnfc wants room.
const RX_LEN: usize = 264;

/// Why the reader failed.
#[derive(Debug, thiserror::Error)]
pub enum NfcError {
    /// libnfc reported an error.
    #[error("libnfc: {0}")]
    Libnfc(#[from] nfc1::Error),
}

/// An open NFC reader in initiator mode.
pub struct NfcReader {
    // Dropped before the context it was opened from.
    device: nfc1::Device,
    _context: nfc1::Context,
    poll: Duration,
}

impl std::fmt::Debug for NfcReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcReader").field("connstring", &self.device.connstring()).finish_non_exhaustive()
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
    /// Opens the reader named by `connstring` (or the first one found).
    pub fn open(connstring: Option<&str>) -> Result<Self, NfcError> {
        let mut context = nfc1::Context::new()?;
        let mut device = match connstring {
            Some(c) => context.open_with_connstring(c)?,
            None => context.open()?,
        };
        device.initiator_init()?;
        Ok(Self { device, _context: context, poll: Duration::from_millis(50) })
    }

    /// Opens the reader, retrying until `deadline`: a PC/SC reader is busy
    /// for a moment while a card is being powered up, and USB readers come
    /// and go.
    pub fn open_until(connstring: Option<&str>, deadline: Option<Instant>) -> Result<Self, NfcError> {
        loop {
            match Self::open(connstring) {
                Ok(reader) => return Ok(reader),
                Err(e) if deadline.is_some_and(|d| Instant::now() >= d) => return Err(e),
                Err(e) => tracing::debug!(error = %e, "reader not ready; retrying"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The reader's name.
    pub fn name(&self) -> String {
        self.device.name().to_owned()
    }

    /// The connstring it was opened with.
    pub fn connstring(&self) -> String {
        self.device.connstring().to_owned()
    }

    /// Waits for an ISO 14443-A target (a phone in card emulation) until
    /// `deadline`, calling `idle` between polls (the mesh is served there).
    /// Returns whether one was selected.
    pub fn wait_for_card(&mut self, deadline: Option<Instant>, idle: &mut dyn FnMut()) -> Result<bool, NfcError> {
        let modulation = Modulation { modulation_type: ModulationType::Iso14443a, baud_rate: BaudRate::Baud106 };
        loop {
            match self.device.initiator_select_passive_target(&modulation) {
                Ok(_) => return Ok(true),
                Err(nfc1::Error::NoSuchDeviceFound | nfc1::Error::Timeout | nfc1::Error::DeviceNotSupported) => {}
                Err(e) => return Err(e.into()),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            idle();
            std::thread::sleep(self.poll);
        }
    }

    /// Waits until the card leaves the field (or `max` passes), so one
    /// phone held still is not examined twice.
    pub fn wait_for_removal(&mut self, max: Duration) {
        let until = Instant::now() + max;
        while Instant::now() < until && self.device.initiator_target_is_present_any().is_ok() {
            std::thread::sleep(self.poll);
        }
    }
}

impl Transceiver for NfcReader {
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, String> {
        self.device
            .initiator_transceive_bytes(command, RX_LEN, Timeout::Duration(Duration::from_secs(2)))
            .map_err(|e| e.to_string())
    }
}
