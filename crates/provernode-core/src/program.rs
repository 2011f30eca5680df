use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use crate::ProgramId;

/// A zkVM guest ABI: how a RISC-V ELF talks to its host (entry, memory
/// layout, system calls, how public output is committed). The same C source
/// is compiled once per ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    /// RISC Zero (risc0-zkvm 3.x, v1compat kernel): RV32IM, ELF32.
    Risc0,
    /// SP1 v6: RV64IM, ELF64.
    Sp1,
}

impl Abi {
    pub const ALL: [Abi; 2] = [Abi::Risc0, Abi::Sp1];

    pub fn name(self) -> &'static str {
        match self {
            Abi::Risc0 => "risc0",
            Abi::Sp1 => "sp1",
        }
    }

    /// A stable one-byte code used in the proof envelope.
    pub fn code(self) -> u8 {
        match self {
            Abi::Risc0 => 1,
            Abi::Sp1 => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Abi> {
        match code {
            1 => Some(Abi::Risc0),
            2 => Some(Abi::Sp1),
            _ => None,
        }
    }

    /// The ELF class (`EI_CLASS`) this ABI uses: 1 = ELF32, 2 = ELF64.
    pub fn elf_class(self) -> u8 {
        match self {
            Abi::Risc0 => 1,
            Abi::Sp1 => 2,
        }
    }

    /// The guest memory the ABI gives a program: `[lo, hi)`.
    pub fn address_space(self) -> (u64, u64) {
        match self {
            // risc0 v1compat: user memory 0x4000 .. 0xC000_0000.
            Abi::Risc0 => (0x4000, 0xC000_0000),
            // SP1 v6: a 2^37-byte space; the first page is kept unmapped so
            // null pointer accesses fault.
            Abi::Sp1 => (0x1000, 1 << 37),
        }
    }

    pub fn isa(self) -> &'static str {
        match self {
            Abi::Risc0 => "RV32IM",
            Abi::Sp1 => "RV64IM",
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Abi {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "risc0" => Ok(Abi::Risc0),
            "sp1" => Ok(Abi::Sp1),
            other => Err(format!("unknown ABI {other:?}: expected `risc0` or `sp1`")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    #[error("`{name}` is not an ELF file or a RISC Zero program binary (it starts with neither \\x7fELF nor R0BF); pass a RISC-V ELF built for the risc0 or sp1 ABI, or the .bin that `cargo risczero build` writes")]
    NotElf { name: String },
    #[error("`{name}` is not a little-endian RISC-V executable ({reason}); build it with riscv64-unknown-elf-gcc for rv32im (risc0) or rv64im (sp1)")]
    NotRiscv { name: String, reason: String },
    #[error("`{name}` is a malformed RISC Zero program binary (R0BF): {reason}; give the .bin as `cargo risczero build` wrote it")]
    MalformedR0bf { name: String, reason: String },
    #[error("`{name}` is an SP1 v5 program (a 32-bit RISC-V ELF built with sp1-zkvm 5 or older); this node proves SP1 v6 programs: rebuild it with SP1 v6 (`sp1up`, then `cargo prove build`)")]
    Sp1V5 { name: String },
}

/// How a program's file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramFormat {
    /// A plain RISC-V ELF (SP1 programs, RISC Zero user ELFs).
    Elf,
    /// RISC Zero's `ProgramBinary` (`R0BF`): the user ELF and the kernel it
    /// runs on, as `cargo risczero build` writes them.
    R0bf,
}

impl ProgramFormat {
    pub fn name(self) -> &'static str {
        match self {
            ProgramFormat::Elf => "ELF",
            ProgramFormat::R0bf => "RISC Zero program binary (R0BF)",
        }
    }
}

/// A guest program: its file, its identity (SHA-256 of the file) and the ABI
/// its format selects.
#[derive(Clone)]
pub struct Program {
    name: String,
    abi: Abi,
    id: ProgramId,
    elf: Arc<[u8]>,
    format: ProgramFormat,
    /// Where the user ELF lies in the file (all of it for a plain ELF).
    user_elf: Range<usize>,
}

/// Strings every SP1 guest carries (sp1-zkvm's crate name in its symbols,
/// and the message of its input reader): how an SP1 v5 program, a 32-bit
/// ELF linked where RISC Zero programs are, is told apart from one.
const SP1_MARKERS: [&[u8]; 3] = [b"sp1_zkvm", b"sp1-zkvm", b"SP1Stdin"];

const R0BF_MAGIC: &[u8; 4] = b"R0BF";

/// SHA-256 of the one RISC Zero kernel provernode runs programs on: the
/// v1compat kernel of risc0-zkos-v1compat 2.2.3 (`V1COMPAT_ELF`, 32,392
/// bytes), which risc0-zkvm 3.x pairs with every user ELF and which
/// `cargo risczero build` puts in every R0BF. The risc0 backend's tests check
/// this against the crate it links.
pub const RISC0_V1COMPAT_KERNEL_SHA256: &str =
    "7ffd942e4e8babd771094f549ad080cfea8ecb2c05c986e275c011f41979d921";

/// The region of SP1 6.2's "untrusted program" note, if `notes` (the bytes
/// of one PT_NOTE segment) holds one (`process_note_segment` in SP1's
/// `disassembler/elf.rs`: name "SUCCINCT", type 1, a 20-byte descriptor
/// `'1',0,0,0`, region start, region end, little-endian).
pub fn sp1_untrusted_note(notes: &[u8]) -> Option<(u64, u64)> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            notes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let pad = |n: usize| (4 - n % 4) % 4;
    let mut at = 0usize;
    while at.checked_add(12)? <= notes.len() {
        let name_size = u32_at(at)? as usize;
        let desc_size = u32_at(at + 4)? as usize;
        let note_type = u32_at(at + 8)?;
        at += 12;
        let name = notes.get(at..at.checked_add(name_size)?)?;
        let name = name.split(|&c| c == 0).next().unwrap_or_default();
        at = at.checked_add(name_size + pad(name_size))?;
        let desc = notes.get(at..at.checked_add(desc_size)?)?;
        at = at.checked_add(desc_size + pad(desc_size))?;
        if name == b"SUCCINCT" && note_type == 1 && desc.len() == 20 && desc[..4] == [b'1', 0, 0, 0] {
            let u64_at = |at: usize| -> Option<u64> {
                Some(u64::from_le_bytes(desc.get(at..at + 8)?.try_into().ok()?))
            };
            return Some((u64_at(4)?, u64_at(12)?));
        }
    }
    None
}

/// SP1 6.2's untrusted-program mode: the region its `.note.succinct` names,
/// if this 64-bit ELF's PT_NOTE segments carry one. That mode turns on page
/// protection, MPROTECT and trap handling, which SP1 6.10's x86-64 executor
/// does not implement and trace does not emulate.
pub fn sp1_untrusted_heap(elf: &[u8]) -> Option<(u64, u64)> {
    let u16_at =
        |at: usize| -> Option<u16> { Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?)) };
    let u32_at =
        |at: usize| -> Option<u32> { Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?)) };
    let u64_at =
        |at: usize| -> Option<u64> { Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?)) };
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let phoff = usize::try_from(u64_at(32)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(54)?), usize::from(u16_at(56)?));
    (0..phnum).find_map(|i| {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(at)? != 4 {
            return None;
        }
        let offset = usize::try_from(u64_at(at + 8)?).ok()?;
        let size = usize::try_from(u64_at(at + 32)?).ok()?;
        sp1_untrusted_note(elf.get(offset..offset.checked_add(size)?)?)
    })
}

impl Program {
    /// Wraps a program file: a RISC-V ELF, or a RISC Zero program binary
    /// (R0BF). Checks just enough to pick the ABI; backends validate the
    /// rest when they load it.
    pub fn from_elf(name: impl Into<String>, elf: impl Into<Arc<[u8]>>) -> Result<Program, ProgramError> {
        let name = name.into();
        let file: Arc<[u8]> = elf.into();
        let (format, user_elf) = if file.starts_with(R0BF_MAGIC) {
            let r0bf = R0bf::decode(&file).map_err(|reason| ProgramError::MalformedR0bf {
                name: name.clone(),
                reason,
            })?;
            (ProgramFormat::R0bf, r0bf.user_elf)
        } else {
            (ProgramFormat::Elf, 0..file.len())
        };
        let abi = elf_abi(&name, &file[user_elf.clone()])?;
        if format == ProgramFormat::R0bf && abi != Abi::Risc0 {
            return Err(ProgramError::MalformedR0bf {
                name,
                reason: "its user ELF is not a 32-bit RISC-V ELF".into(),
            });
        }
        if format == ProgramFormat::Elf
            && abi == Abi::Risc0
            && SP1_MARKERS.iter().any(|m| file.windows(m.len()).any(|w| w == *m))
        {
            return Err(ProgramError::Sp1V5 { name });
        }
        Ok(Program {
            id: ProgramId::of_elf(&file),
            name,
            abi,
            elf: file,
            format,
            user_elf,
        })
    }

    pub fn format(&self) -> ProgramFormat {
        self.format
    }

    /// The ELF the guest's own code is in: the file itself, or an R0BF's
    /// user ELF.
    pub fn user_elf(&self) -> &[u8] {
        &self.elf[self.user_elf.clone()]
    }

    /// Refuses an R0BF whose kernel is not the v1compat kernel, naming it:
    /// the program would run on a system this node does not know.
    pub fn check_r0bf_kernel(&self) -> Result<(), String> {
        let Some(kernel) = self.r0bf_kernel() else {
            return Ok(());
        };
        let digest = crate::sha256(kernel).to_string();
        if digest == RISC0_V1COMPAT_KERNEL_SHA256 {
            return Ok(());
        }
        Err(format!(
            "its kernel ELF ({} bytes, SHA-256 {digest}) is not the v1compat kernel this node runs programs on \
             (risc0-zkos-v1compat 2.2.3, SHA-256 {RISC0_V1COMPAT_KERNEL_SHA256}); rebuild it with `cargo risczero build` \
             from risc0 3.x, or give its user ELF alone",
            kernel.len()
        ))
    }

    /// The kernel ELF an R0BF carries.
    pub fn r0bf_kernel(&self) -> Option<&[u8]> {
        match self.format {
            ProgramFormat::R0bf => Some(&self.elf[self.user_elf.end..]),
            ProgramFormat::Elf => None,
        }
    }

    /// A name for messages: the built-in guest name or the file path.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn abi(&self) -> Abi {
        self.abi
    }

    pub fn id(&self) -> ProgramId {
        self.id
    }

    /// The program's file as given (an ELF or an R0BF): what its id is the
    /// SHA-256 of, and what travels with a task.
    pub fn elf(&self) -> &[u8] {
        &self.elf
    }
}

/// The ABI an ELF's header selects.
fn elf_abi(name: &str, elf: &[u8]) -> Result<Abi, ProgramError> {
    let name = || name.to_owned();
    if elf.len() < 20 || &elf[..4] != b"\x7fELF" {
        return Err(ProgramError::NotElf { name: name() });
    }
    let abi = match elf[4] {
        1 => Abi::Risc0,
        2 => Abi::Sp1,
        other => {
            return Err(ProgramError::NotRiscv {
                name: name(),
                reason: format!("unknown ELF class {other}"),
            })
        }
    };
    if elf[5] != 1 {
        return Err(ProgramError::NotRiscv {
            name: name(),
            reason: "big-endian".into(),
        });
    }
    let machine = u16::from_le_bytes([elf[18], elf[19]]);
    if machine != 243 {
        return Err(ProgramError::NotRiscv {
            name: name(),
            reason: format!("e_machine is {machine}, RISC-V is 243"),
        });
    }
    Ok(abi)
}

/// The parts of a RISC Zero `ProgramBinary` (risc0-binfmt 3.x, `elf.rs`):
/// `R0BF`, format version 1 (u32 LE), a header (u32 length, then u32 count
/// of postcard-encoded key-value pairs, each u32-length-prefixed), the user
/// ELF (u32 length, bytes), and the kernel ELF (the rest).
pub struct R0bf {
    pub abi_kind: String,
    pub abi_version: String,
    pub user_elf: Range<usize>,
    pub kernel_elf: Range<usize>,
}

impl R0bf {
    pub fn decode(file: &[u8]) -> Result<R0bf, String> {
        let mut at = R0BF_MAGIC.len();
        if !file.starts_with(R0BF_MAGIC) {
            return Err("it does not start with R0BF".into());
        }
        let u32_at = |what: &str, at: &mut usize| -> Result<usize, String> {
            let bytes = file
                .get(*at..*at + 4)
                .ok_or_else(|| format!("it ends before {what}"))?;
            *at += 4;
            Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
        };
        let version = u32_at("the format version", &mut at)?;
        if version != 1 {
            return Err(format!(
                "format version {version}; RISC Zero 3.x writes version 1"
            ));
        }
        let header_len = u32_at("the header length", &mut at)?;
        let header = file
            .get(at..at.saturating_add(header_len))
            .ok_or("the header runs past the end")?;
        at += header_len;
        let (abi_kind, abi_version) = decode_r0bf_header(header)?;
        let user_len = u32_at("the user ELF's length", &mut at)?;
        let user_end = at
            .checked_add(user_len)
            .filter(|&end| end <= file.len())
            .ok_or("the user ELF runs past the end")?;
        if user_len == 0 || user_end == file.len() {
            return Err("the user ELF or the kernel ELF is empty".into());
        }
        Ok(R0bf {
            abi_kind,
            abi_version,
            user_elf: at..user_end,
            kernel_elf: user_end..file.len(),
        })
    }
}

/// The one key-value pair risc0 writes: `AbiVersion(AbiKind, semver)` in
/// postcard (variant index, kind index, string as varint length + bytes).
fn decode_r0bf_header(header: &[u8]) -> Result<(String, String), String> {
    let malformed = |why: &str| format!("its header is malformed ({why})");
    let count = header
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed("no pair count"))?;
    if count != 1 {
        return Err(malformed(&format!("{count} key-value pairs; RISC Zero writes 1")));
    }
    let len = header
        .get(4..8)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| malformed("no pair length"))?;
    let pair = header
        .get(8..8 + len)
        .ok_or_else(|| malformed("the pair runs past the header"))?;
    if 8 + len != header.len() {
        return Err(malformed("bytes follow the pair"));
    }
    let [0, kind, str_len, version @ ..] = pair else {
        return Err(malformed("the pair is not AbiVersion"));
    };
    let kind = match kind {
        0 => "v1compat",
        1 => "linux",
        _ => return Err(malformed(&format!("ABI kind {kind}"))),
    };
    // Versions are short: a one-byte varint length.
    if usize::from(*str_len) != version.len() || *str_len >= 0x80 {
        return Err(malformed("the ABI version string's length"));
    }
    let version =
        String::from_utf8(version.to_vec()).map_err(|_| malformed("the ABI version is not UTF-8"))?;
    Ok((kind.to_owned(), version))
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("abi", &self.abi)
            .field("id", &self.id)
            .field("format", &self.format)
            .field("elf_len", &self.elf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = class;
        elf[5] = data;
        elf[18..20].copy_from_slice(&machine.to_le_bytes());
        elf
    }

    #[test]
    fn picks_the_abi_from_the_elf_class() {
        let p = Program::from_elf("a", header(1, 1, 243)).unwrap();
        assert_eq!(p.abi(), Abi::Risc0);
        let p = Program::from_elf("b", header(2, 1, 243)).unwrap();
        assert_eq!(p.abi(), Abi::Sp1);
    }

    #[test]
    fn rejects_what_is_not_a_riscv_elf() {
        assert!(matches!(
            Program::from_elf("x", b"#!/bin/sh\necho hi\n".to_vec()),
            Err(ProgramError::NotElf { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(1, 1, 62)),
            Err(ProgramError::NotRiscv { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(3, 1, 243)),
            Err(ProgramError::NotRiscv { .. })
        ));
        assert!(matches!(
            Program::from_elf("x", header(1, 2, 243)),
            Err(ProgramError::NotRiscv { .. })
        ));
    }

    /// risc0-binfmt's own encoding of `ProgramBinary::new(user, kernel)`.
    fn r0bf(user: &[u8], kernel: &[u8]) -> Vec<u8> {
        let mut out = b"R0BF".to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        let pair = [0u8, 0, 5, b'1', b'.', b'0', b'.', b'0'];
        out.extend_from_slice(&(8 + pair.len() as u32).to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(pair.len() as u32).to_le_bytes());
        out.extend_from_slice(&pair);
        out.extend_from_slice(&(user.len() as u32).to_le_bytes());
        out.extend_from_slice(user);
        out.extend_from_slice(kernel);
        out
    }

    #[test]
    fn an_r0bf_is_a_risc0_program_identified_by_the_whole_file() {
        let user = header(1, 1, 243);
        let kernel = b"kernel".to_vec();
        let file = r0bf(&user, &kernel);
        let p = Program::from_elf("a.bin", file.clone()).unwrap();
        assert_eq!(p.abi(), Abi::Risc0);
        assert_eq!(p.format(), ProgramFormat::R0bf);
        assert_eq!(p.user_elf(), &user[..]);
        assert_eq!(p.r0bf_kernel(), Some(&kernel[..]));
        assert_eq!(p.id(), ProgramId::of_elf(&file));
        let parts = R0bf::decode(&file).unwrap();
        assert_eq!(
            (parts.abi_kind.as_str(), parts.abi_version.as_str()),
            ("v1compat", "1.0.0")
        );

        for (bad, why) in [
            (file[..file.len() - kernel.len()].to_vec(), "kernel ELF is empty"),
            (file[..30].to_vec(), "ends before the user ELF"),
            (file[..40].to_vec(), "user ELF runs past the end"),
            (r0bf(&header(2, 1, 243), &kernel), "not a 32-bit RISC-V ELF"),
        ] {
            let err = Program::from_elf("b.bin", bad).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn an_sp1_v5_program_is_named_as_such() {
        let mut elf = header(1, 1, 243);
        elf.extend_from_slice(b"...Was the correct data written into SP1Stdin?...");
        assert_eq!(
            Program::from_elf("fib", elf).err(),
            Some(ProgramError::Sp1V5 { name: "fib".into() })
        );
    }

    #[test]
    fn abi_codes_round_trip() {
        for abi in Abi::ALL {
            assert_eq!(Abi::from_code(abi.code()), Some(abi));
            assert_eq!(abi.name().parse::<Abi>(), Ok(abi));
        }
        assert_eq!(Abi::from_code(0), None);
    }
}
