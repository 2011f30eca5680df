//! The trace backend against the committed guest ELFs: known answers, ABI
//! agreement, proofs, tampering and every kind of bad program.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

use provernode_backend_trace::{risc0_output_digest, TraceBackend};
use provernode_core::{
    sha256, Abi, Backend, BackendError, Fault, Limits, Program, ProgramId, ProofEnvelope, ProveOptions,
    VerifyError,
};
use provernode_guests::find;
use rand::{Rng, SeedableRng};

fn program(name: &str, abi: Abi) -> Program {
    find(name)
        .unwrap_or_else(|| panic!("no guest {name}"))
        .program(abi)
}

fn fib_input(n: u32) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

fn chain_input(seed: [u8; 32], rounds: u32) -> Vec<u8> {
    let mut v = seed.to_vec();
    v.extend_from_slice(&rounds.to_le_bytes());
    v
}

fn execute(name: &str, abi: Abi, input: &[u8]) -> Vec<u8> {
    TraceBackend::new()
        .execute(&program(name, abi), input, &Limits::default())
        .unwrap_or_else(|e| panic!("{name} on {abi}: {e}"))
        .public_output
}

#[test]
fn fibonacci_known_answers_on_both_abis() {
    let cases: [(u32, u64); 6] = [
        (0, 0),
        (1, 1),
        (10, 55),
        (90, 2_880_067_194_370_816_120),
        (93, 12_200_160_415_121_876_738),
        (1000, 817_770_325_994_397_771),
    ];
    for abi in Abi::ALL {
        for (n, fib) in cases {
            let out = execute("fibonacci", abi, &fib_input(n));
            let mut want = n.to_le_bytes().to_vec();
            want.extend_from_slice(&fib.to_le_bytes());
            assert_eq!(out, want, "fib({n}) on {abi}");
        }
    }
}

#[test]
fn sha256_test_vectors_on_both_abis() {
    let vectors: [(&[u8], &str); 3] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for abi in Abi::ALL {
        for (msg, digest) in vectors {
            assert_eq!(hex::encode(execute("sha256", abi, msg)), digest, "{abi} {msg:?}");
        }
    }
}

#[test]
fn inputs_of_every_length_around_word_and_chunk_boundaries_are_read_exactly() {
    // risc0 reads 1 KiB at a time through a word buffer; SP1 reads whole
    // 8-byte words. Lengths around both boundaries must all come through.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let lengths = (0..=17).chain(1020..=1030).chain([2047, 2048, 2049, 5000]);
    for len in lengths {
        let msg: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let want = sha256(&msg);
        for abi in Abi::ALL {
            assert_eq!(
                execute("sha256", abi, &msg),
                want.as_bytes(),
                "{abi}, {len} bytes"
            );
        }
    }
}

#[test]
fn sha256_chain_matches_the_reference_on_both_abis() {
    let guest = find("sha256-chain").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for rounds in [0, 1, 2, 100, 1000] {
        let seed: [u8; 32] = rng.gen();
        let input = chain_input(seed, rounds);
        let want = guest.reference_output(&input).unwrap();
        for abi in Abi::ALL {
            assert_eq!(
                execute("sha256-chain", abi, &input),
                want,
                "{abi}, {rounds} rounds"
            );
        }
    }
    // One round from the zero seed is SHA-256 of 32 zero bytes.
    assert_eq!(
        hex::encode(execute("sha256-chain", Abi::Risc0, &chain_input([0; 32], 1))),
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    );
}

#[test]
fn both_abis_agree_on_every_demo_input_and_match_the_reference() {
    for guest in provernode_guests::all().iter().filter(|g| !g.test_only) {
        for args in guest.demo_inputs() {
            let input = guest.encode_input(&args).unwrap();
            let risc0 = execute(guest.name, Abi::Risc0, &input);
            let sp1 = execute(guest.name, Abi::Sp1, &input);
            assert_eq!(risc0, sp1, "{} {args:?}", guest.name);
            assert_eq!(
                Some(risc0),
                guest.reference_output(&input),
                "{} {args:?}",
                guest.name
            );
        }
    }
}

#[test]
fn risc0_output_digest_of_the_empty_journal_matches_risc0s_constant() {
    // risc0-zkvm's examples/loop.s halts with this digest for an empty journal.
    let d = risc0_output_digest(b"").to_string();
    assert!(d.starts_with("836f175c") && d.ends_with("db575b0"), "{d}");
}

#[test]
fn malformed_input_is_invalid_input_not_a_crash() {
    for abi in Abi::ALL {
        for input in [vec![], vec![1, 2, 3], vec![0; 5]] {
            let err = TraceBackend::new()
                .execute(&program("fibonacci", abi), &input, &Limits::default())
                .unwrap_err();
            assert!(
                matches!(err, BackendError::InvalidInput { .. }),
                "{abi} {input:?}: {err}"
            );
        }
        let err = TraceBackend::new()
            .execute(&program("sha256-chain", abi), &[0; 35], &Limits::default())
            .unwrap_err();
        assert!(matches!(err, BackendError::InvalidInput { .. }), "{err}");
    }
}

#[test]
fn an_endless_loop_hits_the_cycle_limit_with_its_pc() {
    for abi in Abi::ALL {
        let limits = Limits {
            max_cycles: 100_000,
            ..Limits::default()
        };
        let err = TraceBackend::new()
            .execute(&program("spin", abi), &[], &limits)
            .unwrap_err();
        match &err {
            BackendError::CycleLimit { program, pc, limit } => {
                assert_eq!(program, "spin");
                assert_eq!(*limit, 100_000);
                assert!(pc.is_some_and(|pc| pc != 0), "{pc:?}");
            }
            other => panic!("{abi}: expected a cycle limit, got {other}"),
        }
        assert!(err.to_string().contains("spin"), "{err}");
    }
}

#[test]
fn a_memory_hog_hits_the_memory_limit() {
    for abi in Abi::ALL {
        let limits = Limits {
            max_memory_bytes: 8 << 20,
            ..Limits::default()
        };
        let err = TraceBackend::new()
            .execute(&program("memhog", abi), &[], &limits)
            .unwrap_err();
        assert!(
            matches!(err, BackendError::MemoryLimit { limit_bytes, .. } if limit_bytes == 8 << 20),
            "{abi}: {err}"
        );
    }
}

/// The file offset of the ELF's entry point (our ELFs map the entry segment
/// with a known offset/address relation, found through the program headers).
fn entry_offset(elf: &[u8]) -> (usize, u64) {
    let is64 = elf[4] == 2;
    let rd32 = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as u64;
    let rd64 = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let rd16 = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let (entry, phoff, phnum) = if is64 {
        (rd64(24), rd64(32) as usize, rd16(56))
    } else {
        (rd32(24), rd32(28) as usize, rd16(44))
    };
    for i in 0..phnum {
        let at = phoff + i * if is64 { 56 } else { 32 };
        let (offset, vaddr, filesz) = if is64 {
            (rd64(at + 8), rd64(at + 16), rd64(at + 32))
        } else {
            (rd32(at + 4), rd32(at + 8), rd32(at + 16))
        };
        if entry >= vaddr && entry < vaddr + filesz {
            return ((offset + entry - vaddr) as usize, entry);
        }
    }
    panic!("entry not in any segment");
}

fn patched(name: &str, abi: Abi, word: u32) -> (Program, u64) {
    let mut elf = find(name).unwrap().elf(abi).to_vec();
    let (off, entry) = entry_offset(&elf);
    elf[off..off + 4].copy_from_slice(&word.to_le_bytes());
    (Program::from_elf("patched", elf).unwrap(), entry)
}

fn word_expected(abi: Abi) -> u32 {
    if abi == Abi::Sp1 {
        0x0010_0073
    } else {
        0xffff_ffff
    }
}

#[test]
fn an_illegal_instruction_is_reported_with_program_and_pc() {
    // SP1 refuses an undecodable word anywhere in its executable segment at
    // load time, so for SP1 the word that faults when run is an ebreak.
    let sp1 = patched("fibonacci", Abi::Sp1, 0xffff_ffff).0;
    match TraceBackend::new().execute(&sp1, &fib_input(3), &Limits::default()) {
        Err(BackendError::MalformedProgram { reason, .. }) => {
            assert!(
                reason.contains("0xffffffff") && reason.contains("not an RV64IM instruction"),
                "{reason}"
            )
        }
        other => panic!("sp1: expected a malformed program, got {other:?}"),
    }
    for abi in Abi::ALL {
        let (p, entry) = patched("fibonacci", abi, word_expected(abi));
        let err = TraceBackend::new()
            .execute(&p, &fib_input(3), &Limits::default())
            .unwrap_err();
        match &err {
            BackendError::GuestFault {
                program,
                pc,
                fault: Fault::IllegalInstruction { word, .. },
            } => {
                assert_eq!(
                    (program.as_str(), *pc, *word),
                    ("patched", entry, word_expected(abi))
                );
            }
            other => panic!("{abi}: {other}"),
        }
        assert!(err.to_string().contains(&format!("{entry:#x}")), "{err}");
    }
}

#[test]
fn an_out_of_bounds_store_is_reported_with_its_address() {
    for abi in Abi::ALL {
        // sw x0, 0(x0): a store to address 0, below every ABI's memory.
        let (p, entry) = patched("fibonacci", abi, 0x0000_2023);
        let err = TraceBackend::new()
            .execute(&p, &fib_input(3), &Limits::default())
            .unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::GuestFault { pc, fault: Fault::OutOfBounds { addr: 0, write: true, .. }, .. } if pc == entry
            ),
            "{abi}: {err}"
        );
    }
}

#[test]
fn an_rv64_instruction_in_an_rv32_program_is_illegal() {
    // ld a0, 0(a0)
    let (p, _) = patched("fibonacci", Abi::Risc0, 0x0005_3503);
    let err = TraceBackend::new()
        .execute(&p, &fib_input(3), &Limits::default())
        .unwrap_err();
    assert!(err.to_string().contains("RV64-only"), "{err}");
}

fn malformed(elf: Vec<u8>) -> String {
    let p = Program::from_elf("bad.elf", elf).unwrap();
    match TraceBackend::new().execute(&p, &[], &Limits::default()) {
        Err(BackendError::MalformedProgram { program, reason }) => {
            assert_eq!(program, "bad.elf");
            reason
        }
        other => panic!("expected a malformed program, got {other:?}"),
    }
}

#[test]
fn malformed_elfs_are_rejected_with_the_reason() {
    let good = find("fibonacci").unwrap().elf(Abi::Risc0).to_vec();

    let truncated = good[..60].to_vec();
    assert!(malformed(truncated).contains("file ends"));

    let mut shared_object = good.clone();
    shared_object[16] = 3; // ET_DYN
    assert!(malformed(shared_object).contains("ET_EXEC"));

    let mut no_segments = good.clone();
    no_segments[44..46].copy_from_slice(&0u16.to_le_bytes());
    assert!(malformed(no_segments).contains("no program headers"));

    let mut bad_entry = good.clone();
    bad_entry[24..28].copy_from_slice(&0x0010_0000u32.to_le_bytes());
    assert!(malformed(bad_entry).contains("entry point"));

    // Move the first segment's address below risc0's 0x4000 floor.
    let mut low = good.clone();
    let phoff = u32::from_le_bytes(low[28..32].try_into().unwrap()) as usize;
    low[phoff + 8..phoff + 12].copy_from_slice(&0x1000u32.to_le_bytes());
    assert!(malformed(low).contains("outside the risc0 guest memory"));

    // File bytes past the end of the file.
    let mut past_end = good.clone();
    past_end[phoff + 16..phoff + 20].copy_from_slice(&0x10_0000u32.to_le_bytes());
    past_end[phoff + 20..phoff + 24].copy_from_slice(&0x10_0000u32.to_le_bytes());
    assert!(malformed(past_end).contains("past the end of the file"));

    // Constant data in SP1's executable segment: mark the read-only segment
    // (rodata, the second) executable too.
    let mut data_as_code = find("fibonacci").unwrap().elf(Abi::Sp1).to_vec();
    let phoff = u64::from_le_bytes(data_as_code[32..40].try_into().unwrap()) as usize;
    let rodata_flags = phoff + 56 + 4;
    assert_eq!(
        data_as_code[rodata_flags], 4,
        "the sp1 image keeps rodata read-only"
    );
    data_as_code[rodata_flags] = 5;
    let reason = malformed(data_as_code);
    assert!(
        reason.contains("not an RV64IM instruction") && reason.contains(".rodata"),
        "{reason}"
    );

    // An SP1 image linked below 0x78000000.
    let mut sp1 = find("fibonacci").unwrap().elf(Abi::Sp1).to_vec();
    let phoff = u64::from_le_bytes(sp1[32..40].try_into().unwrap()) as usize;
    sp1[phoff + 16..phoff + 24].copy_from_slice(&0x1_0000u64.to_le_bytes());
    assert!(malformed(sp1).contains("0x78000000"));
}

fn prove(name: &str, abi: Abi, input: &[u8]) -> ProofEnvelope {
    TraceBackend::new()
        .prove(&program(name, abi), input, &ProveOptions::default())
        .unwrap()
}

#[test]
fn proofs_verify_and_round_trip_through_the_envelope_file_format() {
    let backend = TraceBackend::new();
    for abi in Abi::ALL {
        let env = prove("fibonacci", abi, &fib_input(50));
        assert_eq!(env.program_id, program("fibonacci", abi).id());
        assert_eq!(env.input_digest, sha256(&fib_input(50)));
        let decoded = ProofEnvelope::decode(&env.encode().unwrap()).unwrap();
        let verified = backend.verify(&decoded).unwrap();
        assert_eq!(verified.public_output, env.public_output);
        assert_eq!(verified.cycles, env.cycles);
        assert!(env.cycles > 0);
    }
}

#[test]
fn a_proof_kind_trace_lacks_is_refused_for_good_with_the_kinds_it_makes() {
    let backend = TraceBackend::new();
    let prove_as = |kind: &str| {
        let options = ProveOptions {
            proof_kind: Some(kind.into()),
            ..ProveOptions::default()
        };
        backend.prove(&program("fibonacci", Abi::Risc0), &fib_input(5), &options)
    };
    let err = prove_as("succinct").unwrap_err();
    assert!(matches!(err, BackendError::UnknownProofKind { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "backend `trace` has no proof kind `succinct`; it makes execution-record (the first is the default)"
    );
    // Another attempt would ask for the same kind: not worth retrying.
    assert!(!err.classify().1, "{err:?}");
    // Naming the default kind is the same as naming none.
    let env = prove_as("execution-record").unwrap();
    assert_eq!(env.proof_kind, "execution-record");
}

fn verify_err(env: &ProofEnvelope) -> VerifyError {
    match TraceBackend::new().verify(env) {
        Err(BackendError::Verify(e)) => e,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

#[test]
fn tampered_envelopes_are_rejected() {
    let env = prove("fibonacci", Abi::Risc0, &fib_input(20));

    let mut e = env.clone();
    e.public_output[4] ^= 1;
    assert!(matches!(verify_err(&e), VerifyError::OutputMismatch { .. }));

    let mut e = env.clone();
    e.program_id = program("sha256", Abi::Risc0).id();
    assert!(matches!(verify_err(&e), VerifyError::ProgramIdMismatch { .. }));

    let mut e = env.clone();
    e.input_digest = sha256(&fib_input(21));
    assert!(matches!(verify_err(&e), VerifyError::InputDigestMismatch { .. }));

    let mut e = env.clone();
    e.cycles -= 1;
    assert!(matches!(verify_err(&e), VerifyError::Invalid { .. }));
    let mut e = env.clone();
    e.cycles += 1;
    assert!(matches!(verify_err(&e), VerifyError::CyclesMismatch { .. }));

    let mut e = env.clone();
    e.abi = Abi::Sp1;
    assert!(matches!(verify_err(&e), VerifyError::AbiMismatch { .. }));

    let mut e = env.clone();
    e.backend = "risc0".into();
    assert!(matches!(verify_err(&e), VerifyError::WrongBackend { .. }));

    let mut e = env.clone();
    e.backend_version = "99".into();
    assert!(matches!(
        verify_err(&e),
        VerifyError::UnsupportedBackendVersion { .. }
    ));

    let mut e = env.clone();
    e.proof_kind = "succinct".into();
    assert!(matches!(verify_err(&e), VerifyError::UnknownProofKind { .. }));

    let mut e = env.clone();
    e.proof.truncate(20);
    assert!(matches!(verify_err(&e), VerifyError::MalformedProof { .. }));

    // A record whose final state digest was altered.
    let mut e = env.clone();
    let n = e.proof.len();
    e.proof[n - 1] ^= 1;
    assert!(matches!(verify_err(&e), VerifyError::Invalid { .. }));
}

#[test]
fn a_forged_record_for_a_different_input_is_rejected() {
    // Swap the input inside the record and fix the envelope's input digest:
    // the re-execution no longer matches the claimed cycles and output.
    let env = prove("fibonacci", Abi::Sp1, &fib_input(20));
    let mut forged = env.clone();
    let other = prove("fibonacci", Abi::Sp1, &fib_input(21));
    forged.proof = other.proof.clone();
    forged.input_digest = other.input_digest;
    assert!(matches!(
        verify_err(&forged),
        VerifyError::OutputMismatch { .. } | VerifyError::Invalid { .. }
    ));
    // Same cycles, different output: fib(20) and fib(20) with a record of
    // another program is caught by the program id.
    let mut forged = env.clone();
    forged.proof = prove("sha256", Abi::Sp1, &fib_input(20)).proof;
    assert!(matches!(
        verify_err(&forged),
        VerifyError::ProgramIdMismatch { .. }
    ));
}

#[test]
fn a_verifier_refuses_to_re_execute_beyond_its_limit() {
    let env = prove("sha256-chain", Abi::Risc0, &chain_input([1; 32], 100));
    let backend = TraceBackend {
        verify_limits: Limits {
            max_cycles: 1000,
            ..Limits::default()
        },
    };
    let err = backend.verify(&env).unwrap_err();
    assert!(err.to_string().contains("--max-cycles"), "{err}");
}

#[test]
fn program_ids_differ_between_abis_and_guests() {
    let mut ids: Vec<ProgramId> = Vec::new();
    for g in provernode_guests::all() {
        for abi in Abi::ALL {
            ids.push(program(g.name, abi).id());
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
}
