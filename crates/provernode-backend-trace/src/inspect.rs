//! What a program file is and which system calls it can make, read from the
//! file alone (`provernode programs inspect FILE`).
//!
//! System calls are found statically: for every `ecall` in the executable
//! segments, the value of t0 is followed through the instructions just
//! before it (`li`, `lui` + `addi[w]`). A call number computed elsewhere (a
//! generic `syscall(nr, ...)` wrapper) cannot be resolved this way and is
//! counted as such. RISC Zero's software calls are named by strings, which
//! are read from the file.

use std::collections::BTreeSet;

use provernode_core::{Abi, Program, ProgramFormat, R0bf, RISC0_V1COMPAT_KERNEL_SHA256};

use crate::decode::{decode, Op};
use crate::elf::{self, PF_X};

/// SP1 6.10's system calls (`syscall_code.rs` in succinctlabs/sp1), and
/// whether trace emulates each.
pub const SP1_SYSCALLS: &[(u64, &str, bool)] = &[
    (0x00, "HALT", true),
    (0x02, "WRITE", true),
    (0x03, "ENTER_UNCONSTRAINED", true),
    (0x04, "EXIT_UNCONSTRAINED", true),
    (0x0030_0105, "SHA_EXTEND", true),
    (0x0001_0106, "SHA_COMPRESS", true),
    (0x0001_0107, "ED_ADD", true),
    (0x0000_0108, "ED_DECOMPRESS", true),
    (0x0001_0109, "KECCAK_PERMUTE", true),
    (0x0001_010A, "SECP256K1_ADD", true),
    (0x0000_010B, "SECP256K1_DOUBLE", true),
    (0x0000_010C, "SECP256K1_DECOMPRESS", false),
    (0x0001_010E, "BN254_ADD", true),
    (0x0000_010F, "BN254_DOUBLE", true),
    (0x10, "COMMIT", true),
    (0x1A, "COMMIT_DEFERRED_PROOFS", true),
    (0x1B, "VERIFY_SP1_PROOF", true),
    (0x0000_011C, "BLS12381_DECOMPRESS", false),
    (0xF0, "HINT_LEN", true),
    (0xF1, "HINT_READ", true),
    (0x0001_011D, "UINT256_MUL", true),
    (0x0001_012F, "U256XU2048_MUL", false),
    (0x0001_011E, "BLS12381_ADD", true),
    (0x0000_011F, "BLS12381_DOUBLE", true),
    (0x0001_0120, "BLS12381_FP_ADD", true),
    (0x0001_0121, "BLS12381_FP_SUB", true),
    (0x0001_0122, "BLS12381_FP_MUL", true),
    (0x0001_0123, "BLS12381_FP2_ADD", true),
    (0x0001_0124, "BLS12381_FP2_SUB", true),
    (0x0001_0125, "BLS12381_FP2_MUL", true),
    (0x0001_0126, "BN254_FP_ADD", true),
    (0x0001_0127, "BN254_FP_SUB", true),
    (0x0001_0128, "BN254_FP_MUL", true),
    (0x0001_0129, "BN254_FP2_ADD", true),
    (0x0001_012A, "BN254_FP2_SUB", true),
    (0x0001_012B, "BN254_FP2_MUL", true),
    (0x0001_012C, "SECP256R1_ADD", true),
    (0x0000_012D, "SECP256R1_DOUBLE", true),
    (0x0000_012E, "SECP256R1_DECOMPRESS", false),
    (0x0001_0130, "UINT256_ADD_CARRY", true),
    (0x0001_0131, "UINT256_MUL_CARRY", true),
    (0x0000_0132, "MPROTECT", true),
    (0x0000_0133, "POSEIDON2", true),
    (0x0000_0134, "SIG_RETURN", true),
    (0x0000_0035, "HINT_MPROTECT_FLUSH", true),
    (0x40, "DUMP_ELF", true),
    (0x41, "INSERT_PROFILER_SYMBOLS", true),
    (0x42, "DELETE_PROFILER_SYMBOLS", true),
];

/// RISC Zero v1compat's ecall selectors (t0), and whether trace emulates each.
const RISC0_ECALLS: &[(u64, &str, bool)] = &[
    (0, "HALT", true),
    (1, "INPUT", true),
    (2, "SOFTWARE", true),
    (3, "SHA", true),
    (4, "BIGINT", true),
    (5, "USER", false),
    (6, "BIGINT2", true),
    (7, "POSEIDON2", true),
];

/// RISC Zero's software calls trace emulates (by their name's last part).
pub(crate) const RISC0_SOFTWARE_EMULATED: &[&str] = &[
    "SYS_READ",
    "SYS_WRITE",
    "SYS_RANDOM",
    "SYS_PANIC",
    "SYS_LOG",
    "SYS_GETENV",
    "SYS_ARGC",
    "SYS_ARGV",
    "SYS_CYCLE_COUNT",
    "SYS_PIPE",
    "SYS_KECCAK",
    "SYS_VERIFY_INTEGRITY",
    "SYS_VERIFY_INTEGRITY2",
];

const RISC0_SOFTWARE_PREFIX: &[u8] = b"risc0_zkvm_platform::syscall::nr::";

/// The name SP1 gives a call number.
pub fn sp1_syscall_name(code: u64) -> Option<&'static str> {
    SP1_SYSCALLS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, name, _)| *name)
}

/// One system call a program can make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SyscallUse {
    pub name: String,
    /// Its number (t0), for ecall selectors; `None` for RISC Zero software
    /// calls, which are named by a string.
    pub code: Option<u64>,
    pub emulated_by_trace: bool,
}

#[derive(Clone, Debug)]
pub struct SegmentInfo {
    pub vaddr: u64,
    pub mem_size: u64,
    pub file_size: u64,
    pub flags: u32,
}

/// What `provernode programs inspect` shows.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub format: ProgramFormat,
    pub abi: Abi,
    pub entry: u64,
    pub segments: Vec<SegmentInfo>,
    pub system_calls: Vec<SyscallUse>,
    /// `ecall`s whose call number is not a constant set just before them.
    pub unresolved_ecalls: usize,
    /// SP1 6.2's untrusted-program note: its heap range.
    pub sp1_untrusted_heap: Option<(u64, u64)>,
    /// An R0BF's header: ABI kind, ABI version, kernel SHA-256, and whether
    /// that kernel is the one this node runs programs on.
    pub r0bf: Option<(String, String, String, bool)>,
}

/// Reads what a program is from its file. The error is a sentence.
pub fn inspect(program: &Program) -> Result<Inspection, String> {
    let image = elf::load(program.user_elf(), program.abi())?;
    let rv64 = program.abi() == Abi::Sp1;
    let mut codes = BTreeSet::new();
    let mut unresolved = 0usize;
    for segment in image.segments.iter().filter(|s| s.flags & PF_X != 0) {
        let words: Vec<u32> = segment
            .data
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        for (k, &word) in words.iter().enumerate() {
            if word != 0x0000_0073 {
                continue;
            }
            match t0_before(&words[k.saturating_sub(16)..k], rv64) {
                Some(code) => {
                    codes.insert(code);
                }
                None => unresolved += 1,
            }
        }
    }
    let table = if rv64 { SP1_SYSCALLS } else { RISC0_ECALLS };
    let mut system_calls: Vec<SyscallUse> = codes
        .iter()
        .map(|&code| match table.iter().find(|(c, _, _)| *c == code) {
            Some((_, name, emulated)) => SyscallUse {
                name: (*name).to_owned(),
                code: Some(code),
                emulated_by_trace: *emulated,
            },
            None => SyscallUse {
                name: format!("unknown ({code:#x})"),
                code: Some(code),
                emulated_by_trace: false,
            },
        })
        .collect();
    if !rv64 {
        for name in risc0_software_calls(program.user_elf()) {
            let emulated = RISC0_SOFTWARE_EMULATED.contains(&name.as_str());
            system_calls.push(SyscallUse {
                name,
                code: None,
                emulated_by_trace: emulated,
            });
        }
    }
    let r0bf = match program.format() {
        ProgramFormat::R0bf => {
            let parts = R0bf::decode(program.elf())?;
            let kernel = provernode_core::sha256(&program.elf()[parts.kernel_elf]).to_string();
            let known = kernel == RISC0_V1COMPAT_KERNEL_SHA256;
            Some((parts.abi_kind, parts.abi_version, kernel, known))
        }
        ProgramFormat::Elf => None,
    };
    Ok(Inspection {
        format: program.format(),
        abi: program.abi(),
        entry: image.entry,
        segments: image
            .segments
            .iter()
            .map(|s| SegmentInfo {
                vaddr: s.vaddr,
                mem_size: s.mem_size,
                file_size: s.data.len() as u64,
                flags: s.flags,
            })
            .collect(),
        system_calls,
        unresolved_ecalls: unresolved,
        sp1_untrusted_heap: image.sp1_untrusted_heap,
        r0bf,
    })
}

/// The constant in t0 (x5) after `window`, if the instructions set it to
/// one: constants are followed through every register (`li`, `lui`,
/// `addi[w]`, `mv`), since compilers often build a call number elsewhere
/// and move it into t0.
fn t0_before(window: &[u32], rv64: bool) -> Option<u64> {
    const T0: usize = 5;
    let mut regs: [Option<u64>; 33] = [None; 33];
    regs[0] = Some(0);
    for &word in window {
        let insn = decode(word, rv64);
        let rd = usize::from(insn.rd);
        let rs1 = usize::from(insn.rs1);
        let imm = insn.imm as i64 as u64;
        let value = match insn.op {
            Op::Lui => Some(imm),
            Op::Addi => regs[rs1].map(|v| v.wrapping_add(imm)),
            Op::Addiw => regs[rs1].map(|v| v.wrapping_add(imm) as u32 as i32 as i64 as u64),
            _ => None,
        };
        if rd < 32 && rd != 0 {
            regs[rd] = value;
        }
    }
    regs[T0].map(|v| if rv64 { v } else { v as u32 as u64 })
}

/// RISC Zero software call names present in the file.
fn risc0_software_calls(file: &[u8]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = file[at..]
        .windows(RISC0_SOFTWARE_PREFIX.len())
        .position(|w| w == RISC0_SOFTWARE_PREFIX)
    {
        let start = at + found + RISC0_SOFTWARE_PREFIX.len();
        let name: Vec<u8> = file[start..]
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
            .copied()
            .collect();
        if name.starts_with(b"SYS_") {
            names.insert(String::from_utf8_lossy(&name).into_owned());
        }
        at = start;
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn t0_is_followed_through_li_and_lui_addiw() {
        // li t0, 0xf1
        assert_eq!(t0_before(&[0x0f10_0293], true), Some(0xF1));
        // lui t0, 0x300; addiw t0, t0, 0x105  => 0x300105
        assert_eq!(t0_before(&[0x0030_02b7, 0x1052_829b], true), Some(0x0030_0105));
        // mv t0, a0 (addi t0, a0, 0): not a constant
        assert_eq!(t0_before(&[0x0005_0293], true), None);
        // li a0, 0x10; mv t0, a0
        assert_eq!(t0_before(&[0x0100_0513, 0x0005_0293], true), Some(0x10));
    }
}
