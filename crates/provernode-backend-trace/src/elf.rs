//! A strict loader for the small static RISC-V executables zkVMs accept.
//!
//! Only the ELF header and the program headers matter to a zkVM: every
//! `PT_LOAD` segment is copied into memory, the rest of the file is ignored.
//! Each ABI adds its own rules (address ranges, W^X), checked in [`load`].

use provernode_core::Abi;

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;
/// SP1 6.2: an executable segment of untrusted code, which runs from memory
/// with permission checks instead of as the program's own.
pub const PF_UNTRUSTED: u32 = 0x0010_0000;
const PT_LOAD: u32 = 1;
const ET_EXEC: u16 = 2;
const EM_RISCV: u16 = 243;
const MAX_SEGMENTS: usize = 64;

#[derive(Clone, Debug)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub flags: u32,
    /// File bytes; `mem_size - data.len()` zero bytes follow.
    pub data: Vec<u8>,
}

/// Loads a program's user ELF (all of a plain ELF; an R0BF's user part,
/// after checking its kernel is the v1compat kernel whose system calls the
/// RISC Zero host emulates).
pub fn load_program(program: &provernode_core::Program) -> Result<Image, String> {
    program.check_r0bf_kernel()?;
    load(program.user_elf(), program.abi())
}

#[derive(Clone, Debug)]
pub struct Image {
    pub entry: u64,
    pub segments: Vec<Segment>,
    /// SP1 6.2's `.note.succinct` (type 1, "untrusted program"): the program
    /// runs with page protection and traps, over this heap range.
    pub sp1_untrusted_heap: Option<(u64, u64)>,
    /// The address of `__SUCCINCT_TRAP_CONTEXT` in the symbol table, where
    /// SP1 finds the trap handler ({handler, code, pc}, three u64).
    pub sp1_trap_context: Option<u64>,
}

const SHT_SYMTAB: u32 = 2;
/// The symbol SP1's loader looks up for the trap handler's context.
const TRAP_CONTEXT_SYMBOL: &[u8] = b"__SUCCINCT_TRAP_CONTEXT";

/// The value of `name` in a 64-bit ELF's symbol table (`.symtab`), if any:
/// as SP1's loader reads it, the first symbol of that name.
fn elf64_symbol(elf: &[u8], name: &[u8]) -> Option<u64> {
    let b = Bytes(elf);
    let shoff = usize::try_from(b.u64(40).ok()?).ok()?;
    let (shentsize, shnum) = (usize::from(b.u16(58).ok()?), usize::from(b.u16(60).ok()?));
    let section = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    for i in 0..shnum {
        let at = section(i)?;
        if b.u32(at + 4).ok()? != SHT_SYMTAB {
            continue;
        }
        let (offset, size) = (
            usize::try_from(b.u64(at + 24).ok()?).ok()?,
            usize::try_from(b.u64(at + 32).ok()?).ok()?,
        );
        let strtab = section(b.u32(at + 40).ok()? as usize)?;
        let str_offset = usize::try_from(b.u64(strtab + 24).ok()?).ok()?;
        let str_size = usize::try_from(b.u64(strtab + 32).ok()?).ok()?;
        let strings = elf.get(str_offset..str_offset.checked_add(str_size)?)?;
        for sym in (offset..offset.checked_add(size)?).step_by(24) {
            let name_at = b.u32(sym).ok()? as usize;
            let sym_name = strings.get(name_at..)?.split(|&c| c == 0).next()?;
            if sym_name == name {
                return b.u64(sym + 8).ok();
            }
        }
    }
    None
}

/// The memory an ABI gives its guest: `[lo, hi)`.
pub fn address_space(abi: Abi) -> (u64, u64) {
    abi.address_space()
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn get<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        at.checked_add(N)
            .and_then(|end| self.0.get(at..end))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("file ends at byte {} while reading offset {at}", self.0.len()))
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        self.get(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        self.get(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        self.get(at).map(u64::from_le_bytes)
    }
    /// A word of the ELF's class: u32 for ELF32, u64 for ELF64.
    fn word(&self, at: usize, is64: bool) -> Result<u64, String> {
        if is64 {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
}

const PT_NOTE: u32 = 4;

/// Parses and validates `elf` for `abi`. The error is a sentence saying what
/// is wrong.
pub fn load(elf: &[u8], abi: Abi) -> Result<Image, String> {
    let b = Bytes(elf);
    if elf.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    let class = b.get::<1>(4)?[0];
    if class != abi.elf_class() {
        return Err(format!(
            "ELF class {} does not match the {abi} ABI, which needs ELF{}",
            class,
            if abi.elf_class() == 1 { 32 } else { 64 }
        ));
    }
    let is64 = class == 2;
    if b.get::<1>(5)?[0] != 1 {
        return Err("big-endian ELF; zkVMs are little-endian".into());
    }
    let e_type = b.u16(16)?;
    if e_type != ET_EXEC {
        return Err(format!(
            "ELF type {e_type} is not ET_EXEC (2); link a static executable (-static -nostdlib), not a shared object or relocatable file"
        ));
    }
    let machine = b.u16(18)?;
    if machine != EM_RISCV {
        return Err(format!("e_machine {machine} is not RISC-V (243)"));
    }
    let (entry, phoff, phentsize, phnum) = if is64 {
        (b.u64(24)?, b.u64(32)?, b.u16(54)?, b.u16(56)?)
    } else {
        (
            u64::from(b.u32(24)?),
            u64::from(b.u32(28)?),
            b.u16(42)?,
            b.u16(44)?,
        )
    };
    let expected_phentsize = if is64 { 56 } else { 32 };
    if phentsize != expected_phentsize {
        return Err(format!(
            "program header size {phentsize}, expected {expected_phentsize}"
        ));
    }
    if phnum == 0 {
        return Err("no program headers".into());
    }
    let (lo, hi) = address_space(abi);
    let mut segments = Vec::new();
    let mut sp1_untrusted_heap = None;
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)
            .ok()
            .and_then(|o| o.checked_add(i * usize::from(phentsize)))
            .ok_or("program header table offset overflows")?;
        let p_type = b.u32(at)?;
        if p_type == PT_NOTE && is64 && sp1_untrusted_heap.is_none() {
            let (offset, filesz) = (b.u64(at + 8)?, b.u64(at + 32)?);
            let notes = offset
                .checked_add(filesz)
                .and_then(|e| elf.get(usize::try_from(offset).ok()?..usize::try_from(e).ok()?))
                .ok_or(format!("note segment {i} lies past the end of the file"))?;
            sp1_untrusted_heap = provernode_core::sp1_untrusted_note(notes);
        }
        if p_type != PT_LOAD {
            continue;
        }
        let (flags, offset, vaddr, filesz, memsz) = if is64 {
            (
                b.u32(at + 4)?,
                b.u64(at + 8)?,
                b.u64(at + 16)?,
                b.u64(at + 32)?,
                b.u64(at + 40)?,
            )
        } else {
            (
                b.u32(at + 24)?,
                b.word(at + 4, false)?,
                b.word(at + 8, false)?,
                b.word(at + 16, false)?,
                b.word(at + 20, false)?,
            )
        };
        if filesz > memsz {
            return Err(format!(
                "segment {i}: file size {filesz:#x} exceeds memory size {memsz:#x}"
            ));
        }
        if vaddr % 4 != 0 {
            return Err(format!("segment {i}: address {vaddr:#x} is not 4-aligned"));
        }
        let end = vaddr
            .checked_add(memsz)
            .ok_or(format!("segment {i}: address overflows"))?;
        if vaddr < lo || end > hi {
            return Err(format!(
                "segment {i} [{vaddr:#x}, {end:#x}) lies outside the {abi} guest memory [{lo:#x}, {hi:#x})"
            ));
        }
        let data = offset
            .checked_add(filesz)
            .and_then(|e| elf.get(usize::try_from(offset).ok()?..usize::try_from(e).ok()?))
            .ok_or(format!(
                "segment {i}: file bytes [{offset:#x}, +{filesz:#x}) lie past the end of the file"
            ))?;
        if flags & PF_W != 0 && flags & PF_X != 0 && abi == Abi::Sp1 {
            return Err(format!(
                "segment {i} at {vaddr:#x} is both writable and executable, which SP1 refuses"
            ));
        }
        if abi == Abi::Sp1 && flags & PF_R == 0 {
            return Err(format!(
                "segment {i} at {vaddr:#x} is not readable, which SP1 refuses"
            ));
        }
        if abi == Abi::Sp1 && flags & PF_X != 0 {
            // SP1 decodes every word of an executable segment up front and
            // stops on one that is not an instruction.
            for (k, w) in data.chunks_exact(4).enumerate() {
                let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                // (Fence and system encodings decode; they fault only if run.)
                use crate::decode::{Illegal, Op};
                if let Op::Illegal(
                    why @ (Illegal::Unknown | Illegal::Compressed | Illegal::Atomic | Illegal::Float),
                ) = crate::decode::decode(word, true).op
                {
                    return Err(format!(
                        "word {word:#010x} at {:#x} in executable segment {i} is not an RV64IM instruction ({}); SP1 decodes every word of an executable segment, so keep constant data (.rodata) in a segment without execute permission",
                        vaddr + 4 * k as u64,
                        why.why()
                    ));
                }
            }
        }
        if abi == Abi::Sp1 && vaddr < 0x7800_0000 {
            return Err(format!(
                "segment {i} at {vaddr:#x} is below 0x78000000, where SP1 keeps the stack; link the image at 0x78000000"
            ));
        }
        segments.push(Segment {
            vaddr,
            mem_size: memsz,
            flags,
            data: data.to_vec(),
        });
        if segments.len() > MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} loadable segments"));
        }
    }
    if segments.is_empty() {
        return Err("no loadable (PT_LOAD) segments".into());
    }
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        if pair[0].vaddr + pair[0].mem_size > pair[1].vaddr {
            return Err(format!(
                "segments at {:#x} and {:#x} overlap",
                pair[0].vaddr, pair[1].vaddr
            ));
        }
    }
    if entry % 4 != 0 {
        return Err(format!("entry point {entry:#x} is not 4-aligned"));
    }
    let entry_ok = segments
        .iter()
        .any(|s| s.flags & PF_X != 0 && entry >= s.vaddr && entry < s.vaddr + s.mem_size);
    if !entry_ok {
        return Err(format!(
            "entry point {entry:#x} is not inside an executable segment"
        ));
    }
    let sp1_trap_context = if is64 && sp1_untrusted_heap.is_some() {
        elf64_symbol(elf, TRAP_CONTEXT_SYMBOL)
    } else {
        None
    };
    Ok(Image {
        entry,
        segments,
        sp1_untrusted_heap,
        sp1_trap_context,
    })
}
