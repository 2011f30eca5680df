//! The official SP1 guests (`fixtures/official-guests/`) on SP1's own
//! executor against `trace`: the same public output and instruction count
//! for every case of the shared table, whose numbers must also be SP1's.
//! Executing is seconds, no proving. Runs only with the `prove` feature
//! (CI's real-backend step).

#![cfg(feature = "prove")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

#[path = "../../provernode-backend-trace/tests/official_cases/mod.rs"]
mod official_cases;

use official_cases::{cases, program};
use provernode_backend_sp1::Sp1Backend;
use provernode_backend_trace::TraceBackend;
use provernode_core::{input, Backend, BackendError, Limits};

#[test]
fn sp1s_executor_and_trace_agree_on_every_official_guest() {
    let sp1 = Sp1Backend::default();
    let trace = TraceBackend::new();
    for case in cases() {
        let p = program(case.program);
        let bytes = input::encode_items(&case.items);
        let real = sp1
            .execute(&p, &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{} on SP1: {e}", case.program));
        let emulated = trace.execute(&p, &bytes, &Limits::default()).unwrap();
        assert_eq!(
            hex::encode(&real.public_output),
            case.output_hex,
            "{}: SP1's output",
            case.program
        );
        assert_eq!(
            real.cycles, case.cycles,
            "{}: SP1's instruction count",
            case.program
        );
        assert_eq!(emulated.public_output, real.public_output, "{}", case.program);
        assert_eq!(emulated.cycles, real.cycles, "{}", case.program);
    }
}

#[test]
fn an_official_guest_panic_is_a_guest_panic_on_sp1_too() {
    let bytes = input::encode_items(&[b"ab".to_vec(), b"cde".to_vec()]);
    let err = Sp1Backend::default()
        .execute(&program("sp1-cluster-fibonacci.elf"), &bytes, &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::GuestPanic { .. }), "{err:?}");
}
