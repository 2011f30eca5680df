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

/// SP1 6.2's trap guest (`.note.succinct`: page protection, MPROTECT,
/// traps) aborts SP1 6.10's own x86-64 executor ("page_prot_write not
/// implemented for JitContext"), which would read as an executor killed
/// from outside and be retried everywhere. The sp1 backend refuses it
/// before running, as the program's own deterministic failure; trace runs
/// it (its own checks pass: `tests/official.rs` of the trace crate).
#[test]
fn an_untrusted_mode_program_is_refused_by_sp1_and_run_by_trace() {
    let p = program("sp1-gpu-trap.elf");
    let err = Sp1Backend::default()
        .execute(&p, &[], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::UnsupportedFeature { .. }), "{err:?}");
    assert!(err.to_string().contains("untrusted-program mode"), "{err}");
    assert_eq!(err.classify(), (provernode_core::Cause::BackendError, false));
    TraceBackend::new()
        .execute(&p, &[], &Limits::default())
        .unwrap_or_else(|e| panic!("trace: {e}"));
}

/// SP1's executor aborts its process on some guest input: here a
/// secp256k1 point off the curve, which it decodes with k256. That abort
/// used to be taken for the machine's fault and retried; the same run on
/// trace stops for good, so the sp1 backend reports it as the program's.
#[test]
fn an_sp1_executor_abort_on_the_programs_own_input_is_not_retried() {
    let bytes = official_cases::probe_input(0x0000_010B, &[5, 0, 0, 0, 7, 0, 0, 0], &[], 0);
    let p = official_cases::probe();
    let err = Sp1Backend::default()
        .execute(&p, &bytes, &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::ExecutorRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("not on the curve"), "{err}");
    assert_eq!(err.classify(), (provernode_core::Cause::BackendError, false));
    let err = TraceBackend::new()
        .execute(&p, &bytes, &Limits::default())
        .unwrap_err();
    assert!(err.to_string().contains("not on the curve"), "{err}");
}

/// A guest built with SP1's profiling feature calls INSERT_PROFILER_SYMBOLS,
/// which SP1 6.10's x86-64 executor aborts on ("not implemented"). The sp1
/// backend finds the call statically and refuses the program before it
/// runs; trace runs it (the call changes nothing).
#[test]
fn a_program_built_for_profiling_is_refused_by_sp1_and_run_by_trace() {
    let p = official_cases::sp1_test_guest("sp1-profiler-probe.elf");
    let err = Sp1Backend::default()
        .execute(&p, &[], &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::UnsupportedFeature { .. }), "{err:?}");
    assert!(err.to_string().contains("INSERT_PROFILER_SYMBOLS"), "{err}");
    assert_eq!(err.classify(), (provernode_core::Cause::BackendError, false));
    let out = TraceBackend::new().execute(&p, &[], &Limits::default()).unwrap();
    assert_eq!(out.public_output, vec![1]);
}

#[test]
fn an_official_guest_panic_is_a_guest_panic_on_sp1_too() {
    let bytes = input::encode_items(&[b"ab".to_vec(), b"cde".to_vec()]);
    let err = Sp1Backend::default()
        .execute(&program("sp1-cluster-fibonacci.elf"), &bytes, &Limits::default())
        .unwrap_err();
    assert!(matches!(err, BackendError::GuestPanic { .. }), "{err:?}");
}

/// Every precompile trace emulates, on generated inputs, through the probe
/// guest (`crates/provernode-guests/guests/programs/sp1-precompile-probe.c`:
/// it calls one precompile on buffers from its input and commits them):
/// trace's buffers and instruction count must be SP1's executor's. Curve
/// points come from SP1 itself: the DOUBLE of a generator is then ADDed.
/// Then every hook (fds 15-21) on generated inputs, square and non-square
/// alike: the items each puts in front of the input stream must be SP1's.
#[test]
fn every_emulated_precompile_agrees_with_sp1s_executor_on_generated_inputs() {
    let probe = official_cases::probe();
    let sp1 = Sp1Backend::default();
    let trace = TraceBackend::new();
    // SplitMix64: deterministic inputs without a dependency.
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let call = |name: &str, code: u64, a: &[u64], b: &[u64], arg: u64| -> Vec<u8> {
        let bytes = official_cases::probe_input(code, a, b, arg);
        let real = sp1
            .execute(&probe, &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{name} on SP1: {e}"));
        let emulated = trace
            .execute(&probe, &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{name} on trace: {e}"));
        assert_eq!(
            hex::encode(&emulated.public_output),
            hex::encode(&real.public_output),
            "{name}"
        );
        assert_eq!(emulated.cycles, real.cycles, "{name}");
        real.public_output
    };
    let words = |bytes: &[u8]| -> Vec<u64> {
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let poseidon_state: Vec<u64> = (0..8).map(|_| next() & 0x3fff_ffff_3fff_ffff).collect();
    call("POSEIDON2", 0x133, &poseidon_state, &[], 0);
    let block: Vec<u64> = (0..16)
        .map(|_| next() & 0xffff_ffff)
        .chain(std::iter::repeat_n(0, 48))
        .collect();
    let extended = call("SHA_EXTEND", 0x0030_0105, &block, &[], 0);
    let state: Vec<u64> = (0..8).map(|_| next() & 0xffff_ffff).collect();
    call("SHA_COMPRESS", 0x0001_0106, &words(&extended), &state, 0);
    let keccak: Vec<u64> = (0..25).map(|_| next()).collect();
    call("KECCAK_PERMUTE", 0x0001_0109, &keccak, &[], 0);
    for (name, code, n) in [
        ("BN254_FP_ADD", 0x0001_0126, 4),
        ("BN254_FP_SUB", 0x0001_0127, 4),
        ("BN254_FP_MUL", 0x0001_0128, 4),
        ("BLS12381_FP_ADD", 0x0001_0120, 6),
        ("BLS12381_FP_SUB", 0x0001_0121, 6),
        ("BLS12381_FP_MUL", 0x0001_0122, 6),
        ("BN254_FP2_ADD", 0x0001_0129, 8),
        ("BN254_FP2_SUB", 0x0001_012A, 8),
        ("BN254_FP2_MUL", 0x0001_012B, 8),
        ("BLS12381_FP2_ADD", 0x0001_0123, 12),
        ("BLS12381_FP2_SUB", 0x0001_0124, 12),
        ("BLS12381_FP2_MUL", 0x0001_0125, 12),
    ] {
        // Below the modulus: the top word is kept small.
        let element = |next: &mut dyn FnMut() -> u64| -> Vec<u64> {
            let mut v: Vec<u64> = (0..n).map(|_| next()).collect();
            let per = if n % 4 == 0 && n != 12 { 4 } else { 6 };
            for chunk in v.chunks_mut(per) {
                if let Some(top) = chunk.last_mut() {
                    *top &= 0x0fff_ffff;
                }
            }
            v
        };
        let x = element(&mut next);
        let y = element(&mut next);
        call(name, code, &x, &y, 0);
    }
    let (x, y, m): (Vec<u64>, Vec<u64>, Vec<u64>) = (
        (0..4).map(|_| next()).collect(),
        (0..4).map(|_| next()).collect(),
        (0..4).map(|_| next()).collect(),
    );
    call("UINT256_MUL", 0x0001_011D, &x, &[y.clone(), m].concat(), 0);
    call(
        "UINT256_MUL mod 2^256",
        0x0001_011D,
        &x,
        &[y, vec![0; 4]].concat(),
        0,
    );
    let hex_words = |hex: &str, n: usize| -> Vec<u64> {
        let mut bytes = hex::decode(hex).unwrap();
        bytes.reverse();
        bytes.resize(n * 8, 0);
        words(&bytes)
    };
    for (name, add, double, n, gx, gy) in [
        (
            "secp256k1", 0x0001_010A, 0x0000_010B, 4,
            "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8",
        ),
        (
            "secp256r1", 0x0001_012C, 0x0000_012D, 4,
            "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        ),
        ("BN254", 0x0001_010E, 0x0000_010F, 4, "01", "02"),
        (
            "BLS12-381", 0x0001_011E, 0x0000_011F, 6,
            "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
            "08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1",
        ),
    ] {
        let g = [hex_words(gx, n), hex_words(gy, n)].concat();
        let g2 = call(&format!("{name} DOUBLE"), double, &g, &[], 0);
        call(&format!("{name} ADD"), add, &words(&g2), &g, 0);
    }
    let ed_y = hex_words(
        "6666666666666666666666666666666666666666666666666666666666666658",
        4,
    );
    let ed_b = call(
        "ED_DECOMPRESS",
        0x0000_0108,
        &[vec![0; 4], ed_y.clone()].concat(),
        &[],
        0,
    );
    call(
        "ED_DECOMPRESS (odd x)",
        0x0000_0108,
        &[vec![0; 4], ed_y].concat(),
        &[],
        1,
    );
    call("ED_ADD", 0x0001_0107, &words(&ed_b), &words(&ed_b), 0);

    // SP1's generic curve formula at its edges (BN254): opposite points
    // (the inverse of 0 is 0 there, so the slope is 0 and a point comes
    // out), doubling a point with y = 0, and an unreduced coordinate.
    let bn = |h: &str| hex_words(h, 4);
    let bn_p_minus_2 = "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd45";
    let bn_p_plus_1 = "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd48";
    call(
        "BN254_ADD of opposite points",
        0x0001_010E,
        &[bn("01"), bn("02")].concat(),
        &[bn("01"), bn(bn_p_minus_2)].concat(),
        0,
    );
    call(
        "BN254_DOUBLE of y = 0",
        0x0000_010F,
        &[bn("05"), bn("00")].concat(),
        &[],
        0,
    );
    call(
        "BN254_ADD with an unreduced x",
        0x0001_010E,
        &[bn(bn_p_plus_1), bn("02")].concat(),
        &[bn("03"), bn("05")].concat(),
        0,
    );

    // DUMP_ELF (a no-op without DUMP_ELF_OUTPUT): same output and
    // instruction count. The profiler calls abort SP1 6.10's x86-64
    // executor ("not implemented"), so they are not compared here; the sp1
    // backend refuses a program that makes them (found statically).
    call("DUMP_ELF", 0x40, &[0; 2], &[0; 2], 0);

    // Every hook: the probe writes the bytes to the hook's fd and commits
    // each item the hook puts in front of the input stream.
    let mut bytes = |n: usize| -> Vec<u8> { (0..n).map(|_| next() as u8).collect() };
    let mut hook_inputs: Vec<(String, u64, Vec<u8>)> = Vec::new();
    for (i, curve) in [1u8, 2, 1, 2, 1, 2].into_iter().enumerate() {
        // r and alpha below either field's modulus; parity alternates.
        let mut buf = vec![curve | if i % 2 == 0 { 0x80 } else { 0 }];
        let (mut r, mut alpha) = (bytes(32), bytes(32));
        r[0] &= 0x7f;
        alpha[0] &= 0x7f;
        alpha[31] |= 1;
        buf.extend(r);
        buf.extend(alpha);
        hook_inputs.push((format!("ecrecover hook #{i}"), 15, buf));
    }
    for i in 0..4 {
        let (mut y, mut v) = (bytes(32), bytes(32));
        y[31] &= 0x7f;
        v[31] &= 0x3f;
        v[0] |= 1;
        hook_inputs.push((format!("ed25519 decompression hook #{i}"), 16, [y, v].concat()));
    }
    for key in [256, 384, 512] {
        let (product, mut modulus) = (bytes(2 * key), bytes(key));
        modulus[key - 1] |= 0x80;
        hook_inputs.push((format!("RSA {key}-byte hook"), 17, [product, modulus].concat()));
    }
    for i in 0..4 {
        let mut x = bytes(48);
        x[0] &= 0x0f;
        hook_inputs.push((format!("BLS12-381 square root hook #{i}"), 18, x.clone()));
        hook_inputs.push((format!("BLS12-381 inverse hook #{i}"), 19, x));
    }
    // Field hooks over 2^255 - 19 (p = 1 mod 4: Tonelli-Shanks with the
    // non-residue 2) and BN254's base field (p = 3 mod 4).
    let p25519 = hex::decode("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed").unwrap();
    let pbn254 = hex::decode("30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47").unwrap();
    for (field, p) in [("2^255-19", &p25519), ("BN254", &pbn254)] {
        for i in 0..4 {
            let mut x = bytes(32);
            x[0] &= 0x1f;
            // 2 is a non-residue mod 2^255 - 19 (p = 5 mod 8); -1 is one
            // mod any p = 3 mod 4.
            let mut nqr = vec![0u8; 32];
            nqr[31] = 2;
            if field == "BN254" {
                nqr = p.clone();
                nqr[31] -= 1;
            }
            let head = 32u32.to_be_bytes().to_vec();
            hook_inputs.push((
                format!("{field} square root hook #{i}"),
                20,
                [head.clone(), x.clone(), p.clone(), nqr].concat(),
            ));
            hook_inputs.push((
                format!("{field} inverse hook #{i}"),
                21,
                [head, x, p.clone()].concat(),
            ));
        }
    }
    for (name, fd, buf) in hook_inputs {
        let mut padded = buf.clone();
        padded.resize(buf.len().div_ceil(8) * 8, 0);
        call(
            &name,
            0xffff_ffff_0000_0000 | fd,
            &words(&padded),
            &[0; 128],
            buf.len() as u64,
        );
    }
}
