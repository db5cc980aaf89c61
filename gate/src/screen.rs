//! What the gate shows: admit or refuse with the reason, seat and guidance
//! (seed 004), as a block of text for a terminal and as one JSON line for
//! logs and tests.

use crate::gate::{Decision, TapReport, card_reason};
use tessera_core::presentation::{Examination, Outcome};

fn guidance_lines(e: &Examination, out: &mut Vec<String>) {
    let g = &e.guidance;
    match &g.zone {
        Some(zone) => out.push(format!("  {} — zone {}", g.title, zone)),
        None => out.push(format!("  {}", g.title)),
    }
    if let Some(seat) = &g.seat {
        out.push(format!("  Seat {seat}"));
    }
    if let Some(route) = &g.guidance {
        out.push(format!("  Guidance: {route}"));
    }
}

/// The screen for one tap.
pub fn render(report: &TapReport) -> String {
    let rule = "=".repeat(48);
    let mut lines = vec![rule.clone()];
    match &report.decision {
        Decision::Decided(e) => match e.outcome {
            Outcome::Admitted => {
                lines.push(format!("  ADMIT  ({})", e.instruction.as_str()));
                guidance_lines(e, &mut lines);
                lines.push(format!("  uses left {} · record {}", e.uses_left, e.certificate.body.record));
            }
            Outcome::Refused(r) => {
                lines.push(format!("  REFUSED — {}", r.describe()));
                guidance_lines(e, &mut lines);
                lines.push(format!("  record {}", e.certificate.body.record));
            }
        },
        Decision::CardRefused(sw) => {
            lines.push(format!("  REFUSED — the wallet declined: {}", sw.describe()));
            lines.push(format!("  ({}, status {:04X})", card_reason(*sw), sw.0));
        }
        Decision::Failed(why) => {
            lines.push("  TRY AGAIN — hold the phone still".to_owned());
            lines.push(format!("  ({why})"));
        }
    }
    lines.push(rule);
    lines.join("\n")
}

/// One JSON object per tap.
pub fn json(report: &TapReport) -> serde_json::Value {
    let mut v = serde_json::json!({
        "admitted": report.admitted(),
        "reason": report.reason(),
        "confirmed": report.confirmed,
        "round_trips": report.round_trips,
        "bytes_sent": report.traffic.bytes_sent,
        "bytes_received": report.traffic.bytes_received,
    });
    if let Decision::Decided(e) = &report.decision {
        v["instrument"] = e.instrument_id.to_hex().into();
        v["instruction"] = e.instruction.as_str().into();
        v["uses_left"] = e.uses_left.into();
        v["counter"] = e.certificate.body.counter.into();
        v["record"] = e.certificate.body.record.into();
        v["seat"] = e.guidance.seat.clone().into();
        v["guidance"] = e.guidance.guidance.clone().into();
        v["double_transfer_signer"] = e.proof.as_ref().map(|p| p.signer.to_hex()).into();
    }
    if let Decision::CardRefused(sw) = &report.decision {
        v["status_word"] = format!("{:04X}", sw.0).into();
    }
    v
}
