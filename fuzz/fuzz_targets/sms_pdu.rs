//! The PDU decoders the daemon (status reports from `+CDS`) and the simulator
//! (SMS-SUBMIT) run on bytes from the serial line: never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sms2fa::sms::{decode_status_report, decode_submit, DeliveryStatus};

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = decode_status_report(data) {
        // A decoded report is a consistent value.
        if let DeliveryStatus::Pending(st) = report.status {
            assert!((0x20..0x40).contains(&st), "pending with TP-ST {st:#x}");
        }
        let _ = format!("{report:?}");
    }
    if let Ok(submit) = decode_submit(data) {
        if let Some(concat) = submit.concat {
            let _ = (concat.total, concat.sequence);
        }
        let _ = format!("{submit:?}");
    }
    // The same bytes as the hex text the modem really prints (`+CDS: n` then a hex line)
    // go through the same decoders after hex decoding in the driver; here the raw form
    // suffices, and the hex path is exercised by the AT engine target.
});
