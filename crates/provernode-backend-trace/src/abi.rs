//! Emulation of each zkVM's guest system calls, and the driver that runs a
//! program to completion.
//!
//! The public output the emulation collects must equal, byte for byte, what
//! the real zkVM commits: RISC Zero's journal (bytes written to fd 3) and
//! SP1's public values (bytes written to fd 13). Each halt is checked the way
//! the real verifier checks it: RISC Zero's output digest, SP1's committed
//! public-values digest.

use std::collections::VecDeque;

use provernode_core::{sha256, Abi, BackendError, Digest, Fault, Limits, Program};
use sha2::{Digest as _, Sha256};

use crate::elf;
use crate::machine::{
    Machine, Trap, PROT_FAILURE_EXEC, PROT_FAILURE_READ, PROT_FAILURE_WRITE, PROT_READ, PROT_WRITE,
};
use crate::risc0_accel;
use crate::risc0_claims;
use crate::sp1_bigint::{self, Curve, FieldOp};
use crate::sp1_precompiles;

/// What one complete run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub public_output: Vec<u8>,
    pub cycles: u64,
    pub stdout: Vec<u8>,
    /// SHA-256 over the final registers, pc, cycle count and every touched
    /// memory page: what the execution record commits to.
    pub state_digest: Digest,
    /// Bytes of guest memory the run touched (whole 4 KiB pages).
    pub guest_memory_bytes: u64,
}

/// Guest stdout kept per run; the rest is dropped.
const MAX_STDOUT: usize = 64 << 10;
/// Most bytes one write system call may move.
const MAX_WRITE: u64 = 16 << 20;
/// Most bytes of public output one run may commit.
const MAX_PUBLIC_OUTPUT: usize = 64 << 20;

const REG_T0: usize = 5;
const REG_A0: usize = 10;
const REG_A1: usize = 11;
const REG_A2: usize = 12;
const REG_A3: usize = 13;
const REG_A4: usize = 14;
const REG_A5: usize = 15;

pub(crate) fn bad(detail: impl Into<String>) -> Trap {
    Trap::Fault(Fault::BadSyscall {
        detail: detail.into(),
    })
}

/// One ABI's system calls.
trait Host<const RV64: bool> {
    /// Handles the ecall just executed; `Some(exit_code)` when the guest halted.
    fn ecall(&mut self, m: &mut Machine<RV64>) -> Result<Option<u32>, Trap>;
    /// The committed public output.
    fn public_output(&self) -> &[u8];
    /// What the guest wrote to stdout and stderr, interleaved (the tail).
    fn stdout(&self) -> &[u8];
    /// What a non-zero exit code means, in this zkVM's terms.
    fn exit_error(&self, program: String, code: u32) -> BackendError;
}

/// Appends committed bytes, refusing a public output past its cap.
fn commit_output(buf: &mut Vec<u8>, data: &[u8], what: &str) -> Result<(), Trap> {
    if buf.len() + data.len() > MAX_PUBLIC_OUTPUT {
        return Err(bad(format!("{what} exceed {MAX_PUBLIC_OUTPUT} bytes")));
    }
    buf.extend_from_slice(data);
    Ok(())
}

/// Appends guest output, keeping the last `cap` bytes: a panic message
/// comes last.
fn append_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    let data = &data[data.len().saturating_sub(cap)..];
    buf.extend_from_slice(data);
    if buf.len() > cap {
        buf.drain(..buf.len() - cap);
    }
}

/// The last few lines of guest output, for an error message.
fn output_tail(output: &[u8]) -> String {
    const TAIL: usize = 2048;
    let text = String::from_utf8_lossy(&output[output.len().saturating_sub(TAIL)..]).into_owned();
    text.trim().to_owned()
}

/// RISC Zero v1compat: `ecall` selector in t0; software calls dispatch on the
/// name string at a2.
pub struct Risc0Host<'a> {
    input: &'a [u8],
    input_pos: usize,
    journal: Vec<u8>,
    stdout: Vec<u8>,
    /// Words handed out by SYS_RANDOM so far (the deterministic stream's
    /// position).
    random_words: u64,
    /// Set by SYS_PANIC: the guest's message.
    panic: Option<String>,
    /// Pipes made by SYS_PIPE: (fd of both ends, bytes written and not yet
    /// read).
    pipes: Vec<(u64, VecDeque<u8>)>,
    /// Keccak permutations (state before, after) since the last prove.
    keccak_batch: Vec<([u64; 25], [u64; 25])>,
    /// The keccak proofs the guest asked for, as the assumptions they are.
    keccak_proofs: Vec<risc0_claims::Assumption>,
    /// Assumptions the guest verified, in order: its output digest commits
    /// to them.
    assumptions: Vec<risc0_claims::Assumption>,
    /// Receipt claims the host holds a checked proof of (an aggregate's
    /// inner proofs), which SYS_VERIFY_INTEGRITY may name.
    receipts: &'a [risc0_claims::Digest32],
}

pub const RISC0_SYS_READ: &str = "risc0_zkvm_platform::syscall::nr::SYS_READ";
pub const RISC0_SYS_WRITE: &str = "risc0_zkvm_platform::syscall::nr::SYS_WRITE";
const RISC0_SYS_RANDOM: &str = "risc0_zkvm_platform::syscall::nr::SYS_RANDOM";
const RISC0_SYS_PANIC: &str = "risc0_zkvm_platform::syscall::nr::SYS_PANIC";
const RISC0_SYS_LOG: &str = "risc0_zkvm_platform::syscall::nr::SYS_LOG";
const RISC0_SYS_GETENV: &str = "risc0_zkvm_platform::syscall::nr::SYS_GETENV";
const RISC0_SYS_ARGC: &str = "risc0_zkvm_platform::syscall::nr::SYS_ARGC";
const RISC0_SYS_CYCLE_COUNT: &str = "risc0_zkvm_platform::syscall::nr::SYS_CYCLE_COUNT";
const RISC0_SYS_ARGV: &str = "risc0_zkvm_platform::syscall::nr::SYS_ARGV";
const RISC0_SYS_PIPE: &str = "risc0_zkvm_platform::syscall::nr::SYS_PIPE";
const RISC0_SYS_KECCAK: &str = "risc0_zkvm_platform::syscall::nr::SYS_KECCAK";
const RISC0_SYS_VERIFY_INTEGRITY: &str = "risc0_zkvm_platform::syscall::nr::SYS_VERIFY_INTEGRITY";
const RISC0_SYS_VERIFY_INTEGRITY2: &str = "risc0_zkvm_platform::syscall::nr::SYS_VERIFY_INTEGRITY2";
/// The fds risc0's host opens for a guest: stdin (read), stdout, stderr and
/// the journal (write). A pipe takes the lowest free ones after them.
const RISC0_STANDARD_FDS: u64 = 4;
/// risc0's host allows fds below this (`MAX_FD` in its `sys_pipe`).
const RISC0_MAX_FD: u64 = 1000;
/// Keccak permutations one keccak proof holds at risc0's default size:
/// `max_keccak_inputs(KECCAK_DEFAULT_PO2)` = 2^17 / 200 cycles.
const RISC0_MAX_KECCAK_INPUTS: usize = (1 << 17) / 200;
/// The most bytes one host read hands the kernel (`MAX_IO_BYTES`), which
/// truncates word-oriented replies to it.
const RISC0_MAX_IO_BYTES: u64 = 1024;
/// risc0's host reads at most this much of a panic message.
const RISC0_MAX_PANIC_MESSAGE: u64 = 1 << 20;
/// Most words one SYS_RANDOM may ask for (16 MiB).
const RISC0_MAX_RANDOM_WORDS: u64 = 4 << 20;
/// SHA-256 blocks one SHA ecall may compress (`MAX_SHA_COMPRESS_BLOCKS`).
const RISC0_MAX_SHA_BLOCKS: u64 = 1000;

/// The BIGINT ecall (t0 = 4) as the v1compat kernel serves it
/// (`ecall_bigint_v1compat`): a0 = result, a1 = op (only 0, multiply),
/// a2 = x, a3 = y, a4 = modulus, each 8 little-endian words. The result is
/// x·y mod modulus; with a zero modulus the full product, which the kernel
/// refuses (an illegal instruction) when it does not fit 256 bits.
fn risc0_bigint(m: &mut Machine<false>) -> Result<(), Trap> {
    use num_bigint::BigUint;
    use num_traits::Zero;
    let (result, op, x, y, modulus) = (
        m.reg(REG_A0),
        m.reg(REG_A1),
        m.reg(REG_A2),
        m.reg(REG_A3),
        m.reg(REG_A4),
    );
    if op != 0 {
        return Err(bad(format!(
            "BIGINT op {op}; the v1compat kernel serves only 0 (multiply) and traps on others"
        )));
    }
    for (what, ptr) in [("result", result), ("x", x), ("y", y), ("modulus", modulus)] {
        if ptr % 4 != 0 {
            return Err(bad(format!("BIGINT {what} pointer {ptr:#x} is not word-aligned")));
        }
    }
    let read = |m: &Machine<false>, ptr| m.mem.read_bytes(ptr, 32).map(|b| BigUint::from_bytes_le(&b));
    let (x, y, n) = (
        read(m, x).map_err(Trap::from)?,
        read(m, y).map_err(Trap::from)?,
        read(m, modulus).map_err(Trap::from)?,
    );
    let product = x * y;
    let value = if n.is_zero() {
        if product.bits() > 256 {
            return Err(bad(
                "BIGINT product overflows 256 bits with a zero modulus; the v1compat kernel traps on it"
                    .to_owned(),
            ));
        }
        product
    } else {
        product % n
    };
    let mut bytes = value.to_bytes_le();
    bytes.resize(32, 0);
    m.host_write(result, &bytes).map_err(Trap::from)
}

/// The exit code a SYS_PANIC ends the run with internally (never a real
/// RISC Zero exit code, which is 8 bits).
const RISC0_PANICKED: u32 = 0x1_0000;
/// Likewise for a PAUSE halt: the low byte keeps the guest's exit code.
const RISC0_PAUSED: u32 = 0x2_0000;

/// RISC Zero's output digest for a journal with no assumptions:
/// SHA256(SHA256("risc0.Output") || SHA256(journal) || 0^32 || u16le(2)).
pub fn risc0_output_digest(journal: &[u8]) -> Digest {
    Digest(risc0_claims::output_digest(journal, &[0; 32]))
}

impl<'a> Risc0Host<'a> {
    /// A host reading `input` that holds checked proofs of `receipts`
    /// (claim digests).
    pub fn with_receipts(input: &'a [u8], receipts: &'a [risc0_claims::Digest32]) -> Self {
        Risc0Host {
            receipts,
            input,
            input_pos: 0,
            journal: Vec::new(),
            stdout: Vec::new(),
            random_words: 0,
            panic: None,
            pipes: Vec::new(),
            keccak_batch: Vec::new(),
            keccak_proofs: Vec::new(),
            assumptions: Vec::new(),
        }
    }

    /// SYS_RANDOM: `a1` words at `a0`. risc0's host gives real randomness;
    /// trace must give the same words every run, since its proof is checked
    /// by running again, so the words are SHA-256 of a fixed label and a
    /// counter. A guest whose output depends on them commits something
    /// else on risc0 (see docs/guests.md).
    fn random(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        let (buf, words) = (m.reg(REG_A0), m.reg(REG_A1));
        if words > RISC0_MAX_RANDOM_WORDS {
            return Err(bad(format!(
                "SYS_RANDOM of {words} words; at most {RISC0_MAX_RANDOM_WORDS} are served"
            )));
        }
        let mut bytes = Vec::with_capacity(words as usize * 4);
        let first_block = self.random_words / 8;
        let skip = (self.random_words % 8) as usize * 4;
        let mut block = first_block;
        while bytes.len() < words as usize * 4 + skip {
            let mut h = Sha256::new();
            h.update(b"provernode-trace-sys-random");
            h.update(block.to_le_bytes());
            bytes.extend_from_slice(&h.finalize());
            block += 1;
        }
        let bytes = &bytes[skip..skip + words as usize * 4];
        m.host_write(buf, bytes).map_err(Trap::from)?;
        self.random_words += words;
        m.set_reg(REG_A0, words * 4);
        m.set_reg(REG_A1, 0);
        Ok(())
    }

    /// The SHA ecall (t0 = 3), as the v1compat kernel serves it: `a4`
    /// blocks, each 8 words at `a2` then 8 words at `a3` (both advancing 64
    /// bytes a block), compressed into the state read from `a1` and written
    /// to `a0`. Words hold SHA-256's big-endian bytes as they lie in memory.
    fn sha(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        let (out, input, block1, block2, count) = (
            m.reg(REG_A0),
            m.reg(REG_A1),
            m.reg(REG_A2),
            m.reg(REG_A3),
            m.reg(REG_A4),
        );
        if count > RISC0_MAX_SHA_BLOCKS {
            return Err(bad(format!(
                "SHA ecall of {count} blocks; the kernel takes at most {RISC0_MAX_SHA_BLOCKS}"
            )));
        }
        for (what, ptr) in [
            ("output state", out),
            ("input state", input),
            ("first half-block", block1),
            ("second half-block", block2),
        ] {
            if ptr % 4 != 0 {
                return Err(bad(format!(
                    "SHA ecall {what} pointer {ptr:#x} is not word-aligned"
                )));
            }
        }
        let state_bytes = m.mem.read_bytes(input, 32).map_err(Trap::from)?;
        let mut state = [0u32; 8];
        for (word, bytes) in state.iter_mut().zip(state_bytes.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 0..count {
            let mut block = m.mem.read_bytes(block1 + 64 * i, 32).map_err(Trap::from)?;
            block.extend(m.mem.read_bytes(block2 + 64 * i, 32).map_err(Trap::from)?);
            sp1_precompiles::compress_block(&mut state, &block);
        }
        let out_bytes: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
        m.host_write(out, &out_bytes).map_err(Trap::from)
    }
}

fn guest_bytes<const RV64: bool>(m: &Machine<RV64>, addr: u64, len: u64) -> Result<Vec<u8>, Trap> {
    if len > MAX_WRITE {
        return Err(bad(format!(
            "a write of {len} bytes exceeds the {MAX_WRITE}-byte limit per call"
        )));
    }
    m.mem.read_bytes(addr, len).map_err(Trap::from)
}

impl Host<false> for Risc0Host<'_> {
    fn ecall(&mut self, m: &mut Machine<false>) -> Result<Option<u32>, Trap> {
        match m.reg(REG_T0) {
            0 => {
                let a0 = m.reg(REG_A0);
                let halt_type = a0 & 0xff;
                if halt_type > 1 {
                    // The kernel passes it on and the circuit refuses it.
                    return Err(bad(format!(
                        "HALT type {halt_type}; RISC Zero halts are TERMINATE (0) and PAUSE (1)"
                    )));
                }
                let ptr = m.reg(REG_A1);
                if ptr % 4 != 0 {
                    return Err(bad(format!(
                        "HALT output digest pointer {ptr:#x} is not word-aligned"
                    )));
                }
                let given = m.mem.read_bytes(ptr, 32).map_err(Trap::from)?;
                let assumptions = risc0_claims::assumptions_digest(&self.assumptions);
                let expected = risc0_claims::output_digest(&self.journal, &assumptions);
                if given != expected {
                    return Err(bad(format!(
                        "the output digest passed to HALT ({}) does not commit the journal and the {} verified assumption(s) (expected {}); \
                         it must be SHA256(SHA256(\"risc0.Output\") || SHA256(journal) || assumptions || u16le(2)), assumptions 0^32 when none",
                        hex::encode(&given),
                        self.assumptions.len(),
                        hex::encode(expected)
                    )));
                }
                let user_exit = ((a0 >> 8) & 0xff) as u32;
                if halt_type == 1 {
                    return Ok(Some(RISC0_PAUSED | user_exit));
                }
                Ok(Some(user_exit))
            }
            // INPUT: a word of the claim's input digest, which risc0's
            // ExecutorEnv leaves zero; the kernel traps on an index past 7.
            1 => {
                let index = m.reg(REG_A0);
                if index >= 8 {
                    return Err(bad(format!(
                        "INPUT word {index}; the input digest has words 0 to 7 (the kernel traps)"
                    )));
                }
                m.set_reg(REG_A0, 0);
                Ok(None)
            }
            3 => self.sha(m).map(|()| None),
            4 => risc0_bigint(m).map(|()| None),
            6 => risc0_accel::bigint2(m).map(|()| None),
            7 => risc0_accel::poseidon2(m).map(|()| None),
            2 => {
                let name = m.mem.read_c_string(m.reg(REG_A2), 256).map_err(Trap::from)?;
                let name = String::from_utf8_lossy(&name).into_owned();
                match name.as_str() {
                    RISC0_SYS_READ => self.read(m).map(|()| None),
                    RISC0_SYS_RANDOM => self.random(m).map(|()| None),
                    RISC0_SYS_PANIC => {
                        let (ptr, len) = (m.reg(REG_A3), m.reg(REG_A4));
                        let message = guest_bytes(m, ptr, len.min(RISC0_MAX_PANIC_MESSAGE))?;
                        self.panic = Some(String::from_utf8_lossy(&message).into_owned());
                        // Ends the run like a halt; `exit_error` reports it.
                        Ok(Some(RISC0_PANICKED))
                    }
                    RISC0_SYS_LOG => {
                        let (ptr, len) = (m.reg(REG_A3), m.reg(REG_A4));
                        let mut line = guest_bytes(m, ptr, len)?;
                        line.push(b'\n');
                        append_capped(&mut self.stdout, &line, MAX_STDOUT);
                        m.set_reg(REG_A0, 0);
                        m.set_reg(REG_A1, 0);
                        Ok(None)
                    }
                    // No environment variables and no arguments are given
                    // to guests, as `ExecutorEnv` gives none by default.
                    RISC0_SYS_GETENV => {
                        m.set_reg(REG_A0, u64::from(u32::MAX));
                        m.set_reg(REG_A1, 0);
                        Ok(None)
                    }
                    // trace's count, not risc0's (which also counts the
                    // kernel's instructions): docs/guests.md.
                    RISC0_SYS_CYCLE_COUNT => {
                        m.set_reg(REG_A0, m.cycles >> 32);
                        m.set_reg(REG_A1, m.cycles & 0xffff_ffff);
                        Ok(None)
                    }
                    RISC0_SYS_ARGC => {
                        m.set_reg(REG_A0, 0);
                        m.set_reg(REG_A1, 0);
                        Ok(None)
                    }
                    RISC0_SYS_WRITE => {
                        let (fd, ptr, len) = (m.reg(REG_A3), m.reg(REG_A4), m.reg(REG_A5));
                        let data = guest_bytes(m, ptr, len)?;
                        match fd {
                            1 | 2 => append_capped(&mut self.stdout, &data, MAX_STDOUT),
                            3 => commit_output(&mut self.journal, &data, "journal")?,
                            _ => match self.pipes.iter_mut().find(|p| p.0 == fd) {
                                Some(pipe) => {
                                    if pipe.1.len() as u64 + len > MAX_WRITE {
                                        return Err(bad(format!(
                                            "a pipe holding more than {MAX_WRITE} unread bytes"
                                        )));
                                    }
                                    pipe.1.extend(data)
                                }
                                None => {
                                    return Err(bad(format!(
                                        "SYS_WRITE to fd {fd}; RISC Zero guests write stdout (1), stderr (2), the journal (3) or a pipe's write end"
                                    )))
                                }
                            },
                        }
                        m.set_reg(REG_A0, 0);
                        m.set_reg(REG_A1, 0);
                        Ok(None)
                    }
                    // No arguments are given (SYS_ARGC says 0), so risc0's
                    // host fails any index.
                    RISC0_SYS_ARGV => Err(bad(format!(
                        "SYS_ARGV index {}: the guest has no arguments (risc0: \"guest requested index {} from argv of len 0\")",
                        m.reg(REG_A3),
                        m.reg(REG_A3)
                    ))),
                    RISC0_SYS_PIPE => self.pipe(m).map(|()| None),
                    RISC0_SYS_KECCAK => self.keccak(m).map(|()| None),
                    RISC0_SYS_VERIFY_INTEGRITY2 => self.verify_integrity2(m).map(|()| None),
                    RISC0_SYS_VERIFY_INTEGRITY => self.verify_integrity(m).map(|()| None),
                    other => Err(bad(format!(
                        "software system call {other:?} is not emulated by the trace backend yet (emulated: {}; SYS_VERIFY_INTEGRITY2 only of the guest's own keccak proofs)",
                        crate::inspect::RISC0_SOFTWARE_EMULATED.join(", ")
                    ))),
                }
            }
            t0 => Err(bad(match t0 {
                5 => "RISC Zero ecall USER (t0=5); the v1compat kernel has no handler for it (an illegal instruction)".to_owned(),
                t0 => format!(
                    "ecall selector t0={t0} is not a RISC Zero v1compat ecall (HALT=0 .. POSEIDON2=7)"
                ),
            })),
        }
    }

    fn public_output(&self) -> &[u8] {
        &self.journal
    }

    fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// RISC Zero's exit codes are the guest's own (`env::exit`); a panic
    /// is `sys_panic`, not an exit code. Exit code 1 is how provernode's
    /// built-in guests reject input.
    fn exit_error(&self, program: String, code: u32) -> BackendError {
        if let Some(message) = &self.panic {
            return BackendError::GuestPanic {
                program,
                what: "panicked (RISC Zero sys_panic)".into(),
                output: [output_tail(&self.stdout), message.clone()]
                    .join("\n")
                    .trim()
                    .to_owned(),
            };
        }
        if code & RISC0_PAUSED != 0 {
            return BackendError::risc0_paused("trace", program, code & 0xff);
        }
        match code {
            1 => BackendError::InvalidInput { program },
            code => BackendError::GuestExit {
                program,
                code,
                stdout: output_tail(&self.stdout),
            },
        }
    }
}

impl Risc0Host<'_> {
    /// SYS_READ as the v1compat kernel serves it (`sys_read` in
    /// risc0/zkos/v1compat/src/main.rs): the buffer is `a1` *bytes* at `a0`
    /// (risc0-zkvm-platform passes the byte count in both `a1` and `a4`),
    /// filled in 1 KiB host reads until it is full or the input ends; `a0`
    /// returns the bytes read, `a1` is left as it was.
    fn read(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        let (buf, nbytes, fd) = (m.reg(REG_A0), m.reg(REG_A1), m.reg(REG_A3));
        let data: Vec<u8> = if fd == 0 {
            let n = nbytes.min((self.input.len() - self.input_pos) as u64);
            check_read_size(n)?;
            let start = self.input_pos;
            self.input_pos += n as usize;
            self.input[start..self.input_pos].to_vec()
        } else if let Some(pipe) = self.pipes.iter_mut().find(|p| p.0 == fd) {
            let n = nbytes.min(pipe.1.len() as u64);
            check_read_size(n)?;
            pipe.1.drain(..n as usize).collect()
        } else {
            return Err(bad(format!(
                "SYS_READ from fd {fd}; RISC Zero guests read stdin (fd 0) or a pipe's read end"
            )));
        };
        m.host_write(buf, &data).map_err(Trap::from)?;
        m.set_reg(REG_A0, data.len() as u64);
        Ok(())
    }

    /// SYS_PIPE: two words at `a0` (`a1` must be 2) receive a new pipe's
    /// read and write fds as risc0's host picks them: the lowest fd free
    /// after stdin, stdout, stderr and the journal, for *both* ends (its
    /// `alloc_pipe` looks for the write fd before it records the read fd,
    /// so it finds the same one: the first pipe is 4 and 4, checked against
    /// risc0's executor).
    fn pipe(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        let (buf, words) = (m.reg(REG_A0), m.reg(REG_A1));
        if words.min(RISC0_MAX_IO_BYTES / 4) != 2 {
            return Err(bad(format!(
                "SYS_PIPE with room for {words} words; it returns exactly 2 (risc0: \"invalid sys_pipe call\")"
            )));
        }
        let taken = |fd: u64| fd < RISC0_STANDARD_FDS || self.pipes.iter().any(|p| p.0 == fd);
        let Some(fd) = (0..RISC0_MAX_FD).find(|&fd| !taken(fd)) else {
            return Err(bad(format!(
                "SYS_PIPE: all {RISC0_MAX_FD} fds are in use (risc0: \"Could not allocate pipe\")"
            )));
        };
        let fds = [(fd as u32).to_le_bytes(), (fd as u32).to_le_bytes()].concat();
        m.host_write(buf, &fds).map_err(Trap::from)?;
        self.pipes.push((fd, VecDeque::new()));
        m.set_reg(REG_A0, 0);
        Ok(())
    }

    /// SYS_KECCAK. Mode 0 (permute): keccak-f[1600] of the 25 lanes at `a4`
    /// into the `a1` words at `a0`; `a0` returns 1 once a keccak proof's
    /// worth of permutations is batched, and risc0's host refuses another
    /// before the guest proves them. Mode 1 (prove): the guest asks for a
    /// keccak-circuit proof of the batch, naming its claim (`a4`) and
    /// control root (`a5`). risc0's executor takes the claim on trust and
    /// its prover fails later if it is wrong; trace recomputes it from the
    /// permutations it made and refuses a wrong one now, so the proof it
    /// vouches for is the one risc0 would make.
    fn keccak(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        let (out, words, mode, state) = (m.reg(REG_A0), m.reg(REG_A1), m.reg(REG_A3), m.reg(REG_A4));
        match mode {
            0 => {
                if self.keccak_batch.len() >= RISC0_MAX_KECCAK_INPUTS {
                    return Err(bad(
                        "SYS_KECCAK: the keccak batch is full and the guest did not prove it (risc0: \"keccak batch is full, prove must be called\")",
                    ));
                }
                // The kernel truncates the reply to 1 KiB, and risc0's host
                // fills exactly the words asked for: the 50 of a state.
                if words.min(RISC0_MAX_IO_BYTES / 4) != 50 {
                    return Err(bad(format!(
                        "SYS_KECCAK permute with room for {words} words; a keccak state is 50 (risc0: \"invalid sys_keccak_permute\")"
                    )));
                }
                let bytes = m.mem.read_bytes(state, 200).map_err(Trap::from)?;
                let mut lanes = [0u64; 25];
                for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(chunk);
                    *lane = u64::from_le_bytes(le);
                }
                let before = lanes;
                keccak::f1600(&mut lanes);
                let bytes: Vec<u8> = lanes.iter().flat_map(|l| l.to_le_bytes()).collect();
                m.host_write(out, &bytes).map_err(Trap::from)?;
                self.keccak_batch.push((before, lanes));
                m.set_reg(
                    REG_A0,
                    u64::from(self.keccak_batch.len() >= RISC0_MAX_KECCAK_INPUTS),
                );
                Ok(())
            }
            1 => {
                if words != 0 {
                    return Err(bad(
                        "SYS_KECCAK prove with a reply buffer (risc0: \"invalid sys_keccak_prove\")",
                    ));
                }
                let read32 = |m: &Machine<false>, ptr| -> Result<risc0_claims::Digest32, Trap> {
                    let bytes = m.mem.read_bytes(ptr, 32).map_err(Trap::from)?;
                    let mut d = [0u8; 32];
                    d.copy_from_slice(&bytes);
                    Ok(d)
                };
                let (claim, control_root) = (read32(m, state)?, read32(m, m.reg(REG_A5))?);
                let expected = risc0_claims::keccak_claim(&self.keccak_batch);
                if claim != expected {
                    return Err(bad(format!(
                        "SYS_KECCAK prove: the claim {} does not commit the {} permutations batched since the last prove (their claim is {}); risc0's prover would fail to resolve it",
                        hex::encode(claim),
                        self.keccak_batch.len(),
                        hex::encode(expected)
                    )));
                }
                if control_root != risc0_claims::KECCAK_CONTROL_ROOT {
                    return Err(bad(format!(
                        "SYS_KECCAK prove under control root {}; the keccak circuit this node's risc0 proves with has {}",
                        hex::encode(control_root),
                        hex::encode(risc0_claims::KECCAK_CONTROL_ROOT)
                    )));
                }
                self.keccak_batch.clear();
                self.keccak_proofs
                    .push(risc0_claims::Assumption { claim, control_root });
                m.set_reg(REG_A0, 0);
                Ok(())
            }
            mode => Err(bad(format!(
                "SYS_KECCAK mode {mode}; risc0 knows 0 (permute) and 1 (prove)"
            ))),
        }
    }

    /// SYS_VERIFY_INTEGRITY (`env::verify`, `env::verify_integrity`): the 64
    /// bytes at `a3` are a claim digest and a control root (zero: this
    /// run's). risc0's host looks the claim up among the receipts it was
    /// given and stops the run when it has none; trace holds the claims of
    /// the inner proofs it checked itself. The assumption joins the list
    /// the HALT's output digest commits.
    fn verify_integrity(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        if m.reg(REG_A1) != 0 {
            return Err(bad(
                "SYS_VERIFY_INTEGRITY with a reply buffer (risc0: \"invalid sys_verify call\")",
            ));
        }
        let assumption = read_assumption(m)?;
        if assumption.control_root != [0; 32] || !self.receipts.contains(&assumption.claim) {
            return Err(bad(format!(
                "sys_verify_integrity: no receipt found to resolve assumption: claim digest {}, control root {} \
                 (the host holds {} checked proof(s); give the proof of this claim with the aggregate's input)",
                hex::encode(assumption.claim),
                hex::encode(assumption.control_root),
                self.receipts.len(),
            )));
        }
        self.assumptions.push(assumption);
        m.set_reg(REG_A0, 0);
        m.set_reg(REG_A1, 0);
        Ok(())
    }

    /// SYS_VERIFY_INTEGRITY2 (`env::verify_assumption2`): the 64 bytes at
    /// `a3` are a claim and a control root the guest adds to its
    /// assumptions. risc0's executor records it for its prover to resolve.
    /// trace resolves what it can vouch for itself: the root of the guest's
    /// own keccak proofs (one proof under the keccak control root, or their
    /// union under the recursion circuit's), which is what risc0's guest
    /// library verifies at the end of every run that used the keccak
    /// accelerator. Other receipts are the composition work (`env::verify`)
    /// and stop the run, named.
    fn verify_integrity2(&mut self, m: &mut Machine<false>) -> Result<(), Trap> {
        if m.reg(REG_A1) != 0 {
            return Err(bad(
                "SYS_VERIFY_INTEGRITY2 with a reply buffer (risc0: \"invalid sys_verify2 call\")",
            ));
        }
        let assumption = read_assumption(m)?;
        let root = risc0_claims::mmr_root(&self.keccak_proofs);
        if root != Some(assumption) {
            return Err(bad(format!(
                "SYS_VERIFY_INTEGRITY2 of claim {} under control root {}: trace resolves only the root of the guest's own keccak proofs ({}) this way; other receipts are verified with SYS_VERIFY_INTEGRITY (env::verify)",
                hex::encode(assumption.claim),
                hex::encode(assumption.control_root),
                root.map_or("none made".to_owned(), |r| hex::encode(r.claim)),
            )));
        }
        self.assumptions.push(assumption);
        m.set_reg(REG_A0, 0);
        m.set_reg(REG_A1, 0);
        Ok(())
    }
}

/// The claim digest and control root a verify call names at `a3`.
fn read_assumption(m: &Machine<false>) -> Result<risc0_claims::Assumption, Trap> {
    let bytes = m.mem.read_bytes(m.reg(REG_A3), 64).map_err(Trap::from)?;
    let mut assumption = risc0_claims::Assumption {
        claim: [0; 32],
        control_root: [0; 32],
    };
    assumption.claim.copy_from_slice(&bytes[..32]);
    assumption.control_root.copy_from_slice(&bytes[32..]);
    Ok(assumption)
}

fn check_read_size(n: u64) -> Result<(), Trap> {
    if n > MAX_WRITE {
        return Err(bad(format!(
            "a read of {n} bytes exceeds the {MAX_WRITE}-byte limit per call"
        )));
    }
    Ok(())
}

/// SP1 v6: call number in t0, arguments in a0..a2, result in t0 (the call
/// number itself unless the call returns something).
pub struct Sp1Host {
    hints: VecDeque<Vec<u8>>,
    public_values: Vec<u8>,
    stdout: Vec<u8>,
    wrote_stderr: bool,
    committed: [Option<u32>; 8],
    /// Registers, pc and cycle count at ENTER_UNCONSTRAINED, while inside an
    /// unconstrained block (memory keeps its own undo log).
    unconstrained: Option<([u64; 33], u64, u64)>,
    /// Proofs the host holds (an aggregate's inner proofs, checked), as
    /// (vk digest, public-values digest), in the order `write_proof` gave
    /// them; VERIFY_SP1_PROOF takes them in that order.
    proofs: Vec<Sp1DeferredProof>,
    verified: usize,
    /// The deferred-proofs digest of the proofs verified so far.
    deferred_digest: [u32; 8],
}

/// One proof an SP1 guest may verify: what VERIFY_SP1_PROOF names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sp1DeferredProof {
    pub vk_digest: [u32; 8],
    pub pv_digest: [u8; 32],
}

/// `sp1_primitives::hash_deferred_proof`: Poseidon2 padding-free sponge
/// (width 16, rate 8) over prev ‖ vk ‖ the 32 public-values digest bytes.
pub fn sp1_hash_deferred_proof(prev: &[u32; 8], proof: &Sp1DeferredProof) -> [u32; 8] {
    let mut elements = Vec::with_capacity(48);
    elements.extend_from_slice(prev);
    elements.extend_from_slice(&proof.vk_digest);
    elements.extend(proof.pv_digest.iter().map(|&b| u32::from(b)));
    let mut state = [0u32; 16];
    for chunk in elements.chunks_exact(8) {
        state[..8].copy_from_slice(chunk);
        state = crate::sp1_poseidon2::permute(state);
    }
    let mut out = [0u32; 8];
    out.copy_from_slice(&state[..8]);
    out
}

const SP1_HALT: u64 = 0x00;
const SP1_WRITE: u64 = 0x02;
const SP1_ENTER_UNCONSTRAINED: u64 = 0x03;
const SP1_EXIT_UNCONSTRAINED: u64 = 0x04;
const SP1_SHA_EXTEND: u64 = 0x00_30_01_05;
const SP1_SHA_COMPRESS: u64 = 0x00_01_01_06;
const SP1_KECCAK_PERMUTE: u64 = 0x00_01_01_09;
const SP1_COMMIT: u64 = 0x10;
const SP1_COMMIT_DEFERRED_PROOFS: u64 = 0x1A;
const SP1_VERIFY_SP1_PROOF: u64 = 0x1B;
const SP1_HINT_LEN: u64 = 0xF0;
const SP1_HINT_READ: u64 = 0xF1;
const SP1_FD_PUBLIC_VALUES: u64 = 13;
const SP1_MPROTECT: u64 = 0x0000_0132;
const SP1_SIG_RETURN: u64 = 0x0000_0134;
const SP1_HINT_MPROTECT_FLUSH: u64 = 0x0000_0035;
const SP1_DUMP_ELF: u64 = 0x40;
const SP1_INSERT_PROFILER_SYMBOLS: u64 = 0x41;
const SP1_DELETE_PROFILER_SYMBOLS: u64 = 0x42;
/// Bytes written here are pushed to the front of the input stream: the next
/// HINT_LEN/HINT_READ returns them.
const SP1_FD_HINT: u64 = 14;

/// One of SP1's big-number precompiles.
#[derive(Clone, Copy)]
enum BigintCall {
    Add(Curve),
    Double(Curve),
    Fp(Curve, FieldOp),
    Fp2(Curve, FieldOp),
    Uint256Mul,
    Uint256Carry {
        mul: bool,
    },
    EdAdd,
    EdDecompress,
    Poseidon2,
    /// In SP1 6.10's table but its executor stops on them.
    Deprecated(&'static str),
}

impl BigintCall {
    fn run(self, m: &mut Machine<true>, a0: u64, a1: u64) -> Result<(), Trap> {
        match self {
            BigintCall::Add(curve) => sp1_bigint::ec_add(m, curve, a0, a1),
            BigintCall::Double(curve) => sp1_bigint::ec_double(m, curve, a0),
            BigintCall::Fp(curve, op) => sp1_bigint::fp_op(m, curve, op, a0, a1),
            BigintCall::Fp2(curve, op) => sp1_bigint::fp2_op(m, curve, op, a0, a1),
            BigintCall::Uint256Mul => sp1_bigint::uint256_mul(m, a0, a1),
            BigintCall::Uint256Carry { mul } => sp1_bigint::uint256_carry(m, mul),
            BigintCall::EdAdd => sp1_bigint::ed_add(m, a0, a1),
            BigintCall::EdDecompress => sp1_bigint::ed_decompress(m, a0, a1),
            BigintCall::Poseidon2 => crate::sp1_poseidon2::poseidon2(m, a0),
            BigintCall::Deprecated(name) => Err(bad(format!(
                "SP1 system call {name} is deprecated: SP1 6.10's executor stops on it (\"This method should be deprecated\"); rebuild the program with a current sp1-zkvm"
            ))),
        }
    }
}

/// SP1 6.10's numbers for the big-number precompiles (`syscall_code.rs`).
fn sp1_bigint_call(code: u64) -> Option<BigintCall> {
    use BigintCall::*;
    use Curve::*;
    Some(match code {
        0x0001_010A => Add(Secp256k1),
        0x0000_010B => Double(Secp256k1),
        0x0001_010E => Add(Bn254),
        0x0000_010F => Double(Bn254),
        0x0001_011E => Add(Bls12381),
        0x0000_011F => Double(Bls12381),
        0x0001_012C => Add(Secp256r1),
        0x0000_012D => Double(Secp256r1),
        0x0001_0120 => Fp(Bls12381, FieldOp::Add),
        0x0001_0121 => Fp(Bls12381, FieldOp::Sub),
        0x0001_0122 => Fp(Bls12381, FieldOp::Mul),
        0x0001_0123 => Fp2(Bls12381, FieldOp::Add),
        0x0001_0124 => Fp2(Bls12381, FieldOp::Sub),
        0x0001_0125 => Fp2(Bls12381, FieldOp::Mul),
        0x0001_0126 => Fp(Bn254, FieldOp::Add),
        0x0001_0127 => Fp(Bn254, FieldOp::Sub),
        0x0001_0128 => Fp(Bn254, FieldOp::Mul),
        0x0001_0129 => Fp2(Bn254, FieldOp::Add),
        0x0001_012A => Fp2(Bn254, FieldOp::Sub),
        0x0001_012B => Fp2(Bn254, FieldOp::Mul),
        0x0001_011D => Uint256Mul,
        0x0001_0130 => Uint256Carry { mul: false },
        0x0001_0131 => Uint256Carry { mul: true },
        0x0001_0107 => EdAdd,
        0x0000_0108 => EdDecompress,
        0x0000_0133 => Poseidon2,
        0x0000_010C => Deprecated("SECP256K1_DECOMPRESS"),
        0x0000_011C => Deprecated("BLS12381_DECOMPRESS"),
        0x0000_012E => Deprecated("SECP256R1_DECOMPRESS"),
        0x0001_012F => Deprecated("U256XU2048_MUL"),
        _ => return None,
    })
}

impl Sp1Host {
    /// The input items, in order, as `SP1Stdin` holds them: one per
    /// `write`/`write_slice`/`write_vec` on the host, one per
    /// `sp1_zkvm::io::read*` in the guest.
    /// `proofs` are the checked proofs the host holds (`SP1Stdin::write_proof`).
    pub fn with_proofs(items: Vec<Vec<u8>>, proofs: Vec<Sp1DeferredProof>) -> Self {
        Sp1Host {
            proofs,
            verified: 0,
            deferred_digest: [0; 8],
            hints: VecDeque::from(items),
            public_values: Vec::new(),
            stdout: Vec::new(),
            wrote_stderr: false,
            committed: [None; 8],
            unconstrained: None,
        }
    }

    /// MPROTECT (`mprotect_syscall` and `page_prot_write`): one page of the
    /// note's region gets `prot`. SP1's executor asserts each condition, so
    /// a violation stops the run.
    fn mprotect(m: &mut Machine<true>, addr: u64, prot: u64) -> Result<(), Trap> {
        let Some(protection) = m.protection.as_mut() else {
            return Err(bad(
                "MPROTECT in a program without SP1 6.2's untrusted-program note (.note.succinct)",
            ));
        };
        let (start, end) = protection.region;
        if ![0, 4, 5, 6].contains(&prot) {
            return Err(bad(format!(
                "MPROTECT with protection {prot:#x}; SP1 permits none (0), read (4), read+exec (5) and read+write (6)"
            )));
        }
        if addr % 4096 != 0 || addr >= 1 << 48 || addr < start || addr >= end {
            return Err(bad(format!(
                "MPROTECT of {addr:#x}: the address must be page-aligned and inside the note's region {start:#x}..{end:#x}"
            )));
        }
        protection.set(addr, prot as u8);
        Ok(())
    }

    fn halt(&self, exit_code: u64) -> Result<Option<u32>, Trap> {
        // SP1 checks the committed digest only for a successful run: a guest
        // that panics halts with code 1 before committing anything.
        if exit_code != 0 {
            return Ok(Some(exit_code as u32));
        }
        if self.verified != self.proofs.len() {
            return Err(bad(format!(
                "HALT after verifying {} of the {} proofs the host wrote: SP1's recursion checks the digest of every written proof, so this run could not be proved",
                self.verified,
                self.proofs.len()
            )));
        }
        let digest = sha256(&self.public_values);
        let expected: Vec<u32> = digest
            .as_bytes()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        for (i, (&want, got)) in expected.iter().zip(self.committed).enumerate() {
            match got {
                None => {
                    return Err(bad(format!(
                        "HALT before word {i} of the public-values digest was committed (COMMIT 0x10 for words 0..7)"
                    )))
                }
                Some(got) if got != want => {
                    return Err(bad(format!(
                        "committed public-values digest word {i} is {got:#010x}, but SHA-256 of the public values gives {want:#010x}"
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(Some(0))
    }

    fn write(&mut self, m: &Machine<true>, fd: u64, ptr: u64, len: u64) -> Result<(), Trap> {
        let data = guest_bytes(m, ptr, len)?;
        match fd {
            1 | 2 => {
                self.wrote_stderr |= fd == 2 && !data.is_empty();
                append_capped(&mut self.stdout, &data, MAX_STDOUT);
            }
            SP1_FD_PUBLIC_VALUES => commit_output(&mut self.public_values, &data, "public values")?,
            SP1_FD_HINT => self.hints.push_front(data),
            15..=21 => {
                // A hook: the host computes, the guest checks what it reads.
                for item in sp1_bigint::hook(fd, &data)?.into_iter().rev() {
                    self.hints.push_front(item);
                }
            }
            3 => {
                return Err(bad(
                    "WRITE to fd 3, which SP1 silently ignores: SP1 file descriptors are offset by 10, public values go to fd 13",
                ))
            }
            fd => {
                return Err(bad(format!(
                    "WRITE to fd {fd}; SP1 guests write stdout (1), stderr (2), public values (13), hints (14) or a hook (15..21)"
                )))
            }
        }
        Ok(())
    }
}

impl Host<true> for Sp1Host {
    fn ecall(&mut self, m: &mut Machine<true>) -> Result<Option<u32>, Trap> {
        let (a0, a1, a2) = (m.reg(REG_A0), m.reg(REG_A1), m.reg(REG_A2));
        let code = m.reg(REG_T0);
        if self.unconstrained.is_some() && code != SP1_WRITE && code != SP1_EXIT_UNCONSTRAINED {
            return Err(bad(format!(
                "system call {code:#x} inside an unconstrained block, where SP1 allows only WRITE and EXIT_UNCONSTRAINED"
            )));
        }
        match code {
            SP1_HALT => return self.halt(a0),
            SP1_WRITE => self.write(m, a0, a1, a2)?,
            SP1_ENTER_UNCONSTRAINED => {
                // The block runs, then EXIT_UNCONSTRAINED puts registers,
                // memory and the cycle count back and resumes after this
                // ecall with t0 = 0; what it wrote to fds stays written.
                // SP1 counts no instruction of the block, this ecall
                // included, and counts the exiting one: the cycle count
                // kept here (which includes this ecall) stands for it.
                self.unconstrained = Some((m.regs, m.pc, m.cycles));
                m.mem.checkpoint();
                m.set_reg(REG_T0, 1);
            }
            SP1_EXIT_UNCONSTRAINED => {
                let Some((regs, pc, cycles)) = self.unconstrained.take() else {
                    return Err(bad("EXIT_UNCONSTRAINED outside an unconstrained block"));
                };
                m.mem.rollback();
                m.regs = regs;
                m.pc = pc;
                m.cycles = cycles;
                m.set_reg(REG_T0, 0);
            }
            SP1_SHA_EXTEND => {
                // The one precompile SP1 checks in untrusted mode.
                if let Some(p) = &m.protection {
                    p.check_words(a0, 16, PROT_READ)?;
                    p.check_words(a0.wrapping_add(16 * 8), 48, PROT_READ | PROT_WRITE)?;
                }
                sp1_precompiles::sha_extend(m, a0, a1)?
            }
            SP1_MPROTECT => Self::mprotect(m, a0, a1)?,
            // A debugging aid: SP1's executor writes a memory dump only when
            // its host sets DUMP_ELF_OUTPUT, which no proving host does.
            SP1_DUMP_ELF => {}
            // Profiler symbols: no effect on the run, but SP1's executor
            // parses them and stops on malformed ones, so trace does too.
            SP1_INSERT_PROFILER_SYMBOLS | SP1_DELETE_PROFILER_SYMBOLS => {
                let bytes = m.mem.read_bytes(a0, a1.min(MAX_WRITE)).map_err(Trap::from)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    bad("profiler symbols that are not UTF-8 (SP1: \"build utf8 string from bytes\")")
                })?;
                let well_formed = if code == SP1_INSERT_PROFILER_SYMBOLS {
                    serde_json::from_str::<std::collections::HashMap<String, (String, String)>>(text)
                        .ok()
                        .is_some_and(|m| {
                            m.iter()
                                .all(|(k, (_, len))| k.parse::<u64>().is_ok() && len.parse::<u64>().is_ok())
                        })
                } else {
                    serde_json::from_str::<Vec<String>>(text)
                        .ok()
                        .is_some_and(|v| v.iter().all(|a| a.parse::<u64>().is_ok()))
                };
                if !well_formed {
                    return Err(bad(
                        "malformed profiler symbols JSON (SP1's executor stops on it)",
                    ));
                }
            }
            // A hint for SP1's prover (when page permissions are flushed to
            // its trace); nothing to do when executing.
            SP1_HINT_MPROTECT_FLUSH if m.protection.is_some() => {}
            SP1_SIG_RETURN if m.protection.is_some() => {
                // `sig_return_syscall`: resume at [a0] with x1..x31 from
                // [a0 + 8..]; t0 ends as restored.
                let saved = m.mem.read_bytes(a0, 32 * 8).map_err(Trap::from)?;
                let word = |i: usize| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&saved[i * 8..i * 8 + 8]);
                    u64::from_le_bytes(w)
                };
                for r in 1..32 {
                    m.set_reg(r, word(r));
                }
                m.pc = word(0);
            }
            SP1_SHA_COMPRESS => sp1_precompiles::sha_compress(m, a0, a1)?,
            SP1_KECCAK_PERMUTE => sp1_precompiles::keccak_permute(m, a0, a1)?,
            SP1_COMMIT => {
                let slot = self
                    .committed
                    .get_mut(a0 as usize)
                    .ok_or_else(|| bad(format!("COMMIT word index {a0} is not in 0..8")))?;
                *slot = Some(a1 as u32);
            }
            SP1_COMMIT_DEFERRED_PROOFS => {
                if a0 >= 8 {
                    return Err(bad(format!(
                        "COMMIT_DEFERRED_PROOFS word index {a0} is not in 0..8"
                    )));
                }
                let want = self.deferred_digest[a0 as usize];
                if a1 as u32 != want {
                    return Err(bad(format!(
                        "COMMIT_DEFERRED_PROOFS word {a0} is {:#010x}, but the deferred-proofs digest of the {} proof(s) verified gives {want:#010x}",
                        a1 as u32, self.verified
                    )));
                }
            }
            SP1_VERIFY_SP1_PROOF => {
                if a0 % 8 != 0 || a1 % 8 != 0 {
                    return Err(bad(format!(
                        "VERIFY_SP1_PROOF pointers {a0:#x}, {a1:#x} must be 8-aligned"
                    )));
                }
                let vk = guest_bytes(m, a0, 32)?;
                let pv = guest_bytes(m, a1, 32)?;
                let mut named = Sp1DeferredProof {
                    vk_digest: [0; 8],
                    pv_digest: [0; 32],
                };
                for (w, c) in named.vk_digest.iter_mut().zip(vk.chunks_exact(4)) {
                    *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                named.pv_digest.copy_from_slice(&pv);
                let Some(&next) = self.proofs.get(self.verified) else {
                    return Err(bad(format!(
                        "VERIFY_SP1_PROOF #{} (vk {}, public values {}): the host holds only {} proof(s); give every verified proof with the aggregate's input",
                        self.verified,
                        hex::encode(&vk),
                        hex::encode(&pv),
                        self.proofs.len()
                    )));
                };
                if next != named {
                    return Err(bad(format!(
                        "VERIFY_SP1_PROOF #{} names vk {} and public values {}, but the next proof the host holds is for vk {} and public values {} (SP1 takes proofs in the order they were written)",
                        self.verified,
                        hex::encode(&vk),
                        hex::encode(&pv),
                        hex::encode(next.vk_digest.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<_>>()),
                        hex::encode(next.pv_digest)
                    )));
                }
                self.deferred_digest = sp1_hash_deferred_proof(&self.deferred_digest, &next);
                self.verified += 1;
            }
            SP1_HINT_LEN => {
                let len = self.hints.front().map_or(u64::MAX, |h| h.len() as u64);
                m.set_reg(REG_T0, len);
            }
            SP1_HINT_READ => {
                if a0 % 8 != 0 {
                    return Err(bad(format!("HINT_READ buffer {a0:#x} is not 8-aligned")));
                }
                let item = self
                    .hints
                    .pop_front()
                    .ok_or_else(|| bad("HINT_READ with no input left (check HINT_LEN first)"))?;
                if item.len() as u64 != a1 {
                    return Err(bad(format!(
                        "HINT_READ of {a1} bytes, but the next input item has {} bytes",
                        item.len()
                    )));
                }
                // The host writes whole 8-byte words, the last one padded.
                let mut padded = item;
                padded.resize(padded.len().div_ceil(8) * 8, 0);
                m.host_write(a0, &padded).map_err(Trap::from)?;
            }
            code => {
                match sp1_bigint_call(code) {
                    Some(call) => call.run(m, a0, a1)?,
                    None => {
                        return Err(bad(match crate::inspect::sp1_syscall_name(code) {
                            Some(name) => {
                                format!("SP1 system call {name} ({code:#x}) is not emulated by the trace backend yet")
                            }
                            None => format!("ecall t0={code:#x} is not an SP1 v6 system call"),
                        }))
                    }
                }
            }
        }
        Ok(None)
    }

    fn public_output(&self) -> &[u8] {
        &self.public_values
    }

    fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    fn exit_error(&self, program: String, code: u32) -> BackendError {
        sp1_exit_error(program, code, self.wrote_stderr, &self.stdout)
    }
}

/// SP1's exit codes (sp1-zkvm 6): 1 is a Rust panic, whose handler writes
/// the message to stderr first; 3 is `halt_invalid_hint`, a hint that
/// failed its check. Exit code 1 with nothing on stderr is how provernode's
/// built-in guests reject input.
pub fn sp1_exit_error(program: String, code: u32, wrote_stderr: bool, output: &[u8]) -> BackendError {
    match code {
        1 if wrote_stderr => BackendError::GuestPanic {
            program,
            what: "panicked (SP1 exit code 1)".into(),
            output: output_tail(output),
        },
        1 => BackendError::InvalidInput { program },
        3 => BackendError::GuestPanic {
            program,
            what: "halted on a hint that failed its check (SP1 exit code 3: `halt_invalid_hint`)".into(),
            output: output_tail(output),
        },
        code => BackendError::GuestExit {
            program,
            code,
            stdout: output_tail(output),
        },
    }
}

/// Proofs the host holds for a guest that verifies proofs (an aggregate's
/// inner proofs, already checked): what each ABI's verify call may name.
#[derive(Clone, Debug, Default)]
pub struct Deferred {
    /// RISC Zero receipt claims (SYS_VERIFY_INTEGRITY), any order.
    pub risc0_receipts: Vec<risc0_claims::Digest32>,
    /// SP1 proofs (VERIFY_SP1_PROOF), in the order the guest verifies them.
    pub sp1_proofs: Vec<Sp1DeferredProof>,
}

/// Runs `program` on `input` to completion under `limits`.
pub fn run(program: &Program, input: &[u8], limits: &Limits) -> Result<Outcome, BackendError> {
    run_with(program, input, &Deferred::default(), limits)
}

/// [`run`] with the proofs the host holds.
pub fn run_with(
    program: &Program,
    input: &[u8],
    deferred: &Deferred,
    limits: &Limits,
) -> Result<Outcome, BackendError> {
    let image = elf::load_program(program).map_err(|reason| BackendError::MalformedProgram {
        program: program.name().to_owned(),
        reason,
    })?;
    match program.abi() {
        Abi::Risc0 => drive::<false, _>(
            program,
            &image,
            limits,
            Risc0Host::with_receipts(input, &deferred.risc0_receipts),
        ),
        Abi::Sp1 => {
            let items =
                provernode_core::input::decode_items(input).map_err(|e| BackendError::MalformedInput {
                    program: program.name().to_owned(),
                    reason: e.to_string(),
                })?;
            drive::<true, _>(
                program,
                &image,
                limits,
                Sp1Host::with_proofs(items, deferred.sp1_proofs.clone()),
            )
        }
    }
}

fn protection_failure(code: u64) -> &'static str {
    match code {
        PROT_FAILURE_EXEC => "exec",
        PROT_FAILURE_READ => "read",
        PROT_FAILURE_WRITE => "write",
        _ => "unknown",
    }
}

/// SP1's `handle_interrupt`: the pc becomes the handler at `[context]`,
/// `[context + 8]` the failure code, `[context + 16]` the failing pc.
fn deliver_trap<const RV64: bool>(m: &mut Machine<RV64>, context: u64, code: u64) -> Result<(), Trap> {
    let handler = m.mem.load(context, 8)?;
    m.host_write(context + 8, &code.to_le_bytes())?;
    m.host_write(context + 16, &m.pc.to_le_bytes())?;
    m.pc = handler;
    Ok(())
}

fn drive<const RV64: bool, H: Host<RV64>>(
    program: &Program,
    image: &elf::Image,
    limits: &Limits,
    mut host: H,
) -> Result<Outcome, BackendError> {
    let name = || program.name().to_owned();
    let (lo, hi) = elf::address_space(program.abi());
    let mut m = Machine::<RV64>::new(image, lo, hi, limits.max_memory_bytes).map_err(|reason| {
        BackendError::MalformedProgram {
            program: name(),
            reason,
        }
    })?;
    let exit_code = loop {
        let (trap, counted) = match m.run(limits.max_cycles) {
            Trap::Ecall => match host.ecall(&mut m) {
                Ok(None) => continue,
                Ok(Some(code)) => break code,
                // Report the ecall's own pc, not the one after it; the
                // ecall itself was counted.
                Err(t) => {
                    m.pc = m.pc.wrapping_sub(4);
                    (t, true)
                }
            },
            other => (other, false),
        };
        // SP1's untrusted mode: a refused access jumps to the guest's trap
        // handler (`handle_interrupt` in SP1's executor): the failing
        // instruction counts as one and does nothing, the context gets the
        // code and pc, the handler runs next.
        if let (Trap::Protection(code), Some(context)) = (&trap, image.sp1_trap_context) {
            if m.protection.is_some() {
                let code = *code;
                match deliver_trap(&mut m, context, code) {
                    Ok(()) => {
                        if !counted {
                            m.cycles += 1;
                        }
                        continue;
                    }
                    Err(t) => {
                        return Err(BackendError::GuestFault {
                            program: name(),
                            pc: m.pc,
                            fault: match t {
                                Trap::Fault(f) => f,
                                _ => Fault::BadSyscall {
                                    detail: "the trap context cannot be written".into(),
                                },
                            },
                        })
                    }
                }
            }
        }
        let pc = m.pc;
        return Err(match trap {
            Trap::Fault(fault) => BackendError::GuestFault {
                program: name(),
                pc,
                fault,
            },
            Trap::MemoryLimit => BackendError::MemoryLimit {
                program: name(),
                pc,
                limit_bytes: limits.max_memory_bytes,
            },
            Trap::CycleLimit => BackendError::CycleLimit {
                program: name(),
                pc: Some(pc),
                limit: limits.max_cycles,
            },
            Trap::Ecall => BackendError::Prover {
                backend: "trace".into(),
                message: "internal: unhandled ecall".into(),
            },
            // SP1 panics here ("A memory permission failure happens at pc").
            Trap::Protection(code) => BackendError::GuestFault {
                program: name(),
                pc,
                fault: Fault::BadSyscall {
                    detail: format!(
                        "a memory permission failure ({}) and no `__SUCCINCT_TRAP_CONTEXT` symbol to handle it",
                        protection_failure(code)
                    ),
                },
            },
        });
    };
    if exit_code != 0 {
        return Err(host.exit_error(name(), exit_code));
    }
    Ok(Outcome {
        public_output: host.public_output().to_vec(),
        cycles: m.cycles,
        stdout: host.stdout().to_vec(),
        state_digest: state_digest(&m, program.abi()),
        guest_memory_bytes: m.mem.bytes_in_use(),
    })
}

fn state_digest<const RV64: bool>(m: &Machine<RV64>, abi: Abi) -> Digest {
    let mut h = Sha256::new();
    h.update(b"provernode-trace-state-v1");
    h.update([abi.code()]);
    h.update(m.pc.to_le_bytes());
    h.update(m.cycles.to_le_bytes());
    for r in &m.regs[..32] {
        h.update(r.to_le_bytes());
    }
    m.mem.for_each_page(|addr, page| {
        h.update(addr.to_le_bytes());
        h.update(page);
    });
    Digest(h.finalize().into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::elf::{Image, Segment, PF_R, PF_X};

    fn machine() -> Machine<false> {
        let image = Image {
            entry: 0x10000,
            segments: vec![Segment {
                vaddr: 0x10000,
                data: 0x0000_0073u32.to_le_bytes().to_vec(),
                mem_size: 4,
                flags: PF_R | PF_X,
            }],
            sp1_untrusted_heap: None,
            sp1_trap_context: None,
        };
        Machine::new(&image, 0x4000, 0xC000_0000, 1 << 20).unwrap()
    }

    fn le256(v: u128) -> Vec<u8> {
        let mut b = v.to_le_bytes().to_vec();
        b.resize(32, 0);
        b
    }

    #[test]
    fn risc0_bigint_multiplies_modulo_and_refuses_an_overflow_without_one() {
        let mut m = machine();
        let (r, x, y, n) = (0x20000, 0x20100, 0x20200, 0x20300);
        m.host_write(x, &le256(1 << 100)).unwrap();
        m.host_write(y, &le256(3 << 90)).unwrap();
        m.host_write(n, &le256(1_000_000_007)).unwrap();
        for (reg, v) in [(REG_A0, r), (REG_A1, 0), (REG_A2, x), (REG_A3, y), (REG_A4, n)] {
            m.set_reg(reg, v);
        }
        risc0_bigint(&mut m).unwrap();
        let expected = (num_bigint::BigUint::from(1u128 << 100) * (3u128 << 90)) % 1_000_000_007u32;
        let mut expected = expected.to_bytes_le();
        expected.resize(32, 0);
        assert_eq!(m.mem.read_bytes(r, 32).unwrap(), expected);

        // No modulus: the product must fit 256 bits.
        m.host_write(n, &[0; 32]).unwrap();
        m.host_write(x, &[0xff; 32]).unwrap();
        assert!(format!("{:?}", risc0_bigint(&mut m).unwrap_err()).contains("overflows 256 bits"));
    }
}
