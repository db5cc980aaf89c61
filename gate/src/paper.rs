//! Dispense mode (seed 002; DESIGN §3.5): a kiosk reads the e-ticket with
//! instruction *dispense* and prints a paper ticket. The paper carries a QR
//! code of the gate's signed examination certificate (outcome admitted,
//! status dispensed), so any gate that trusts the kiosk's key can check the
//! paper offline, and the e-ticket is void from then on.
//!
//! The PDF is written by hand (one A6 page, Helvetica text, the QR code as
//! filled squares): no PDF library, nothing to go wrong at a kiosk.

use tessera_core::presentation::{ExaminationBody, Guidance, Instruction, Outcome};
use tessera_core::{Signed, Wire};

/// Why no paper ticket was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperError {
    /// The certificate is not an admitted dispense.
    #[error("only an admitted dispense certificate becomes a paper ticket")]
    NotDispensed,
    /// The payload does not fit a QR code.
    #[error("the certificate does not fit a QR code")]
    TooLong,
}

/// What the QR code holds: `TSR1:` and the framed certificate in hex (QR
/// alphanumeric mode takes upper-case hex compactly, and every scanner
/// reads it).
pub fn barcode_payload(certificate: &Signed<ExaminationBody>) -> String {
    format!("TSR1:{}", hex::encode_upper(certificate.to_bytes()))
}

/// Decodes a scanned payload back into the certificate (the caller checks
/// the gate's signature against its trust list).
pub fn read_barcode(payload: &str) -> Option<Signed<ExaminationBody>> {
    let hex_part = payload.strip_prefix("TSR1:")?;
    if hex_part.len() > 2 * <Signed<ExaminationBody> as Wire>::MAX_LEN {
        return None;
    }
    Signed::<ExaminationBody>::from_bytes(&hex::decode(hex_part).ok()?).ok()
}

fn escape(text: &str) -> String {
    // Latin text only on the ticket; anything else becomes '?'.
    text.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => format!("\\{c}"),
            c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
            '—' => "-".to_owned(),
            _ => "?".to_owned(),
        })
        .collect()
}

/// The PDF of a paper ticket for an admitted dispense.
pub fn ticket_pdf(guidance: &Guidance, certificate: &Signed<ExaminationBody>) -> Result<Vec<u8>, PaperError> {
    let c = &certificate.body;
    if c.instruction != Instruction::Dispense || c.outcome != Outcome::Admitted {
        return Err(PaperError::NotDispensed);
    }
    let qr = qrcodegen::QrCode::encode_text(&barcode_payload(certificate), qrcodegen::QrCodeEcc::Medium)
        .map_err(|_| PaperError::TooLong)?;

    // A6 portrait: 298 × 420 pt.
    let mut content = String::new();
    let mut line = |y: u32, size: u32, text: &str| {
        content.push_str(&format!("BT /F1 {size} Tf 24 {y} Td ({}) Tj ET\n", escape(text)));
    };
    line(388, 16, &guidance.title);
    if let Some(zone) = &guidance.zone {
        line(366, 11, &format!("Zone {zone}"));
    }
    if let Some(seat) = &guidance.seat {
        line(350, 11, &format!("Seat {seat}"));
    }
    if let Some(route) = &guidance.guidance {
        line(334, 9, route);
    }
    line(36, 7, &format!("ticket {} - record {} - printed {}", c.instrument_id, c.record, c.time));
    line(26, 7, &format!("kiosk {}", c.gate));
    // The QR code: 4-module quiet zone, fitted into a 230 pt square.
    let size = qr.size();
    let module = 230.0 / f64::from(size + 8);
    let (left, bottom) = (34.0, 60.0);
    content.push_str("0 g\n");
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                let px = left + f64::from(x + 4) * module;
                let py = bottom + f64::from(size - 1 - y + 4) * module;
                content.push_str(&format!("{px:.2} {py:.2} {module:.3} {module:.3} re\n"));
            }
        }
    }
    content.push_str("f\n");

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    Ok(pdf)
}
