//! The RISC-V hart: registers, pc, memory and the interpreter loop.
//!
//! One generic machine serves both ISAs: `RV64 = false` is RV32IM (values
//! kept zero-extended in 64-bit registers), `RV64 = true` is RV64IM. The loop
//! stops at every `ecall` and hands control to the ABI (`abi.rs`).

use provernode_core::Fault;

use crate::decode::{decode, Insn, Op};
#[cfg(test)]
use crate::elf::PF_R;
use crate::elf::{Image, PF_UNTRUSTED, PF_X};
use crate::memory::{MemError, Memory};

/// Why the interpreter loop stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Trap {
    /// An `ecall`; `pc` already points past it.
    Ecall,
    Fault(Fault),
    MemoryLimit,
    CycleLimit,
    /// SP1 6.2's page protection refused an access (code 1 exec, 5 read,
    /// 7 write, SP1's `PROT_FAILURE_*`); `pc` is the failing instruction,
    /// which did nothing and is not yet counted.
    Protection(u64),
}

/// SP1's page permission bits (an ELF segment's p_flags).
pub const PROT_EXEC: u8 = 1;
pub const PROT_WRITE: u8 = 2;
pub const PROT_READ: u8 = 4;
/// What SP1 gives a page no segment and no MPROTECT set.
const DEFAULT_PAGE_PROT: u8 = PROT_READ | PROT_WRITE;
/// SP1's `PROT_FAILURE_*` codes, as RISC-V numbers its exceptions.
pub const PROT_FAILURE_EXEC: u64 = 1;
pub const PROT_FAILURE_READ: u64 = 5;
pub const PROT_FAILURE_WRITE: u64 = 7;
const LOG_PAGE_SIZE: u32 = 12;

/// SP1 6.2's untrusted-program mode (`minimal/arch/portable` in SP1's
/// executor): a permission byte per 4 KiB page; loads, stores, SHA_EXTEND
/// and every instruction fetched outside the trusted code are checked.
#[derive(Clone, Debug)]
pub struct PageProtection {
    pages: std::collections::HashMap<u64, u8>,
    /// The note's region: the pages MPROTECT may change.
    pub region: (u64, u64),
}

impl PageProtection {
    /// The mode's start, when the image's note turns it on: each segment's
    /// pages take its flags, later segments winning a shared page, as SP1's
    /// loader fills its page image.
    fn for_image(image: &Image) -> Option<PageProtection> {
        let region = image.sp1_untrusted_heap?;
        let mut p = PageProtection {
            pages: std::collections::HashMap::new(),
            region,
        };
        for s in &image.segments {
            let end = s.vaddr + s.mem_size;
            for page in (s.vaddr >> LOG_PAGE_SIZE)..end.div_ceil(1 << LOG_PAGE_SIZE) {
                p.set(page << LOG_PAGE_SIZE, s.flags as u8);
            }
        }
        Some(p)
    }

    pub fn get(&self, addr: u64) -> u8 {
        self.pages
            .get(&(addr >> LOG_PAGE_SIZE))
            .copied()
            .unwrap_or(DEFAULT_PAGE_PROT)
    }

    pub fn set(&mut self, page_addr: u64, prot: u8) {
        self.pages.insert(page_addr >> LOG_PAGE_SIZE, prot);
    }

    /// SP1's check order: exec, then read, then write.
    pub fn check(&self, addr: u64, wanted: u8) -> Result<(), Trap> {
        let prot = self.get(addr);
        if wanted & PROT_EXEC != 0 && prot & PROT_EXEC == 0 {
            return Err(Trap::Protection(PROT_FAILURE_EXEC));
        }
        if wanted & PROT_READ != 0 && prot & PROT_READ == 0 {
            return Err(Trap::Protection(PROT_FAILURE_READ));
        }
        if wanted & PROT_WRITE != 0 && prot & PROT_WRITE == 0 {
            return Err(Trap::Protection(PROT_FAILURE_WRITE));
        }
        Ok(())
    }

    /// `prot_slice_check`: every page of `words` 8-byte words at `addr`.
    pub fn check_words(&self, addr: u64, words: u64, wanted: u8) -> Result<(), Trap> {
        let last = addr.wrapping_add(words.saturating_sub(1) * 8);
        for page in (addr >> LOG_PAGE_SIZE)..=(last >> LOG_PAGE_SIZE) {
            self.check(page << LOG_PAGE_SIZE, wanted)?;
        }
        Ok(())
    }
}

impl From<MemError> for Trap {
    fn from(e: MemError) -> Self {
        match e {
            MemError::Fault(f) => Trap::Fault(f),
            MemError::Limit => Trap::MemoryLimit,
        }
    }
}

/// The most bytes of executable code the decoded-instruction cache covers
/// (SP1 allows at most 2^22 instructions, 16 MiB).
const MAX_CODE_SPAN: u64 = 64 << 20;

pub struct Machine<const RV64: bool> {
    /// x0..x31, plus slot 32 where writes to x0 land (x0 itself stays 0).
    pub regs: [u64; 33],
    pub pc: u64,
    pub mem: Memory,
    pub cycles: u64,
    code: Vec<Insn>,
    code_base: u64,
    /// Set for SP1 programs in untrusted-program mode.
    pub protection: Option<PageProtection>,
}

impl<const RV64: bool> Machine<RV64> {
    /// Loads `image` into a fresh memory of `[lo, hi)` bounded by `max_memory`.
    pub fn new(image: &Image, lo: u64, hi: u64, max_memory: u64) -> Result<Self, String> {
        let mut mem = Memory::new(lo, hi, max_memory);
        for s in &image.segments {
            mem.write_bytes(s.vaddr, &s.data).map_err(|e| match e {
                MemError::Limit => {
                    format!("the image needs more than the guest memory limit of {max_memory} bytes")
                }
                MemError::Fault(f) => format!("segment at {:#x} cannot be loaded: {f}", s.vaddr),
            })?;
        }
        let untrusted_mode = image.sp1_untrusted_heap.is_some();
        // In untrusted mode, code marked PF_UNTRUSTED is not the program's:
        // it is fetched from memory, with checks, when it runs.
        let exec: Vec<_> = image
            .segments
            .iter()
            .filter(|s| s.flags & PF_X != 0 && !(untrusted_mode && s.flags & PF_UNTRUSTED != 0))
            .collect();
        let code_base = exec.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let code_end = exec.iter().map(|s| s.vaddr + s.mem_size).max().unwrap_or(0);
        if code_end - code_base > MAX_CODE_SPAN {
            return Err(format!(
                "executable segments span {} bytes; at most {MAX_CODE_SPAN} are supported",
                code_end - code_base
            ));
        }
        let words = (code_end - code_base).div_ceil(4) as usize;
        let mut code = vec![Insn::NOT_EXECUTABLE; words];
        for s in &exec {
            for addr in (s.vaddr..s.vaddr + s.mem_size).step_by(4) {
                let word = mem
                    .load(addr, 4)
                    .map_err(|_| format!("cannot read code at {addr:#x}"))? as u32;
                code[((addr - code_base) / 4) as usize] = decode(word, RV64);
            }
        }
        let protection = PageProtection::for_image(image);
        Ok(Machine {
            regs: [0; 33],
            pc: image.entry,
            mem,
            cycles: 0,
            code,
            code_base,
            protection,
        })
    }

    /// Normalises a value to the register width (RV32: zero-extended 32 bits).
    #[inline(always)]
    fn norm(v: u64) -> u64 {
        if RV64 {
            v
        } else {
            v as u32 as u64
        }
    }

    /// A register's value as a signed integer of the register width.
    #[inline(always)]
    fn signed(v: u64) -> i64 {
        if RV64 {
            v as i64
        } else {
            v as u32 as i32 as i64
        }
    }

    #[inline(always)]
    fn sext32(v: u64) -> u64 {
        v as u32 as i32 as i64 as u64
    }

    pub fn reg(&self, r: usize) -> u64 {
        self.regs[r]
    }

    pub fn set_reg(&mut self, r: usize, v: u64) {
        if r != 0 {
            self.regs[r] = Self::norm(v);
        }
    }

    /// Whether a write into the text changes the code that runs. RISC Zero
    /// fetches every instruction from memory, so it does. SP1 v6 runs the
    /// program as it decoded it when loading (its executor's
    /// `Program::fetch` reads the decoded instructions): a store into the
    /// text changes what loads see, never what executes.
    const CODE_FOLLOWS_MEMORY: bool = !RV64;

    #[inline(always)]
    fn store(&mut self, addr: u64, size: u32, value: u64) -> Result<(), MemError> {
        self.mem.store(addr, size, value)?;
        if Self::CODE_FOLLOWS_MEMORY {
            // Keep the decoded code in step with self-modifying stores.
            let offset = addr.wrapping_sub(self.code_base);
            if offset < (self.code.len() as u64) * 4 {
                self.redecode(addr & !3);
                if size == 8 {
                    self.redecode((addr & !3) + 4);
                }
            }
        }
        Ok(())
    }

    /// Re-decodes the word at `addr` after a host or guest write.
    pub fn redecode(&mut self, addr: u64) {
        let idx = (addr.wrapping_sub(self.code_base) / 4) as usize;
        if idx < self.code.len() && self.code[idx].op != Op::NotExecutable {
            if let Ok(word) = self.mem.load(addr, 4) {
                self.code[idx] = decode(word as u32, RV64);
            }
        }
    }

    /// Host writes into guest memory (system call results) go through here
    /// so that the code cache stays correct.
    pub fn host_write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        self.mem.write_bytes(addr, data)?;
        if !Self::CODE_FOLLOWS_MEMORY || data.is_empty() {
            return Ok(());
        }
        // Redecode where the write and the code overlap, wherever the write
        // starts (below the text and covering all of it included).
        let code_end = self.code_base + (self.code.len() as u64) * 4;
        let write_end = addr.saturating_add(data.len() as u64);
        let from = addr.max(self.code_base);
        let to = write_end.min(code_end);
        let mut a = from & !3;
        while a < to {
            self.redecode(a);
            a += 4;
        }
        Ok(())
    }

    /// Runs until an ecall, a fault, or `max_cycles` instructions in total.
    pub fn run(&mut self, max_cycles: u64) -> Trap {
        if self.protection.is_some() {
            self.run_checked::<true>(max_cycles)
        } else {
            self.run_checked::<false>(max_cycles)
        }
    }

    /// An instruction outside the trusted code, in untrusted mode: read from
    /// memory after SP1's read+exec check of its 8-byte word's page.
    fn fetch_untrusted(&self, pc: u64) -> Result<Insn, Trap> {
        if let Some(p) = &self.protection {
            p.check(pc & !7, PROT_READ | PROT_EXEC)?;
        }
        let word = self.mem.load(pc, 4).map_err(Trap::from)?;
        Ok(decode(word as u32, RV64))
    }

    /// The interpreter; `PROT` compiles SP1's page checks in (untrusted
    /// mode) or out (every other program, at full speed).
    fn run_checked<const PROT: bool>(&mut self, max_cycles: u64) -> Trap {
        loop {
            if self.cycles >= max_cycles {
                return Trap::CycleLimit;
            }
            let pc = self.pc;
            let idx = pc.wrapping_sub(self.code_base) >> 2;
            if pc & 3 != 0 {
                return Trap::Fault(Fault::PcMisaligned);
            }
            let insn = if PROT {
                // Outside the trusted code, untrusted mode runs what memory
                // holds.
                match self.code.get(idx as usize) {
                    Some(insn) if insn.op != Op::NotExecutable => *insn,
                    _ => match self.fetch_untrusted(pc) {
                        Ok(insn) => insn,
                        Err(t) => return t,
                    },
                }
            } else {
                if idx >= self.code.len() as u64 {
                    return Trap::Fault(Fault::PcOutOfBounds);
                }
                self.code[idx as usize]
            };
            let Insn {
                op,
                rd,
                rs1,
                rs2,
                imm,
            } = insn;
            let (rd, rs1, rs2) = (rd as usize, rs1 as usize, rs2 as usize);
            let a = self.regs[rs1];
            let b = self.regs[rs2];
            let imm64 = imm as i64 as u64;
            let mut next = Self::norm(pc.wrapping_add(4));
            macro_rules! set {
                ($v:expr) => {
                    self.regs[rd] = Self::norm($v)
                };
            }
            macro_rules! branch {
                ($cond:expr) => {
                    if $cond {
                        next = Self::norm(pc.wrapping_add(imm64));
                    }
                };
            }
            macro_rules! load {
                ($size:expr, $conv:expr) => {{
                    let addr = Self::norm(a.wrapping_add(imm64));
                    if PROT {
                        if let Some(Err(t)) = self
                            .protection
                            .as_ref()
                            .map(|p| p.check(addr & !7, PROT_READ))
                        {
                            return t;
                        }
                    }
                    match self.mem.load(addr, $size) {
                        Ok(v) => {
                            let conv: fn(u64) -> u64 = $conv;
                            set!(conv(v))
                        }
                        Err(e) => return e.into(),
                    }
                }};
            }
            macro_rules! store {
                ($size:expr) => {{
                    let addr = Self::norm(a.wrapping_add(imm64));
                    if PROT {
                        if let Some(Err(t)) = self
                            .protection
                            .as_ref()
                            .map(|p| p.check(addr & !7, PROT_WRITE))
                        {
                            return t;
                        }
                    }
                    if let Err(e) = self.store(addr, $size, b) {
                        return e.into();
                    }
                }};
            }
            match op {
                Op::Lui => set!(imm64),
                Op::Auipc => set!(pc.wrapping_add(imm64)),
                Op::Jal => {
                    set!(pc.wrapping_add(4));
                    next = Self::norm(pc.wrapping_add(imm64));
                }
                Op::Jalr => {
                    next = Self::norm(a.wrapping_add(imm64)) & !1;
                    set!(pc.wrapping_add(4));
                }
                Op::Beq => branch!(a == b),
                Op::Bne => branch!(a != b),
                Op::Blt => branch!(Self::signed(a) < Self::signed(b)),
                Op::Bge => branch!(Self::signed(a) >= Self::signed(b)),
                Op::Bltu => branch!(a < b),
                Op::Bgeu => branch!(a >= b),
                Op::Lb => load!(1, |v| v as u8 as i8 as i64 as u64),
                Op::Lh => load!(2, |v| v as u16 as i16 as i64 as u64),
                Op::Lw => load!(4, |v| v as u32 as i32 as i64 as u64),
                Op::Ld => load!(8, |v| v),
                Op::Lbu | Op::Lhu | Op::Lwu => {
                    let size = match op {
                        Op::Lbu => 1,
                        Op::Lhu => 2,
                        _ => 4,
                    };
                    load!(size, |v| v)
                }
                Op::Sb => store!(1),
                Op::Sh => store!(2),
                Op::Sw => store!(4),
                Op::Sd => store!(8),
                Op::Addi => set!(a.wrapping_add(imm64)),
                Op::Slti => set!(u64::from(Self::signed(a) < imm as i64)),
                Op::Sltiu => set!(u64::from(a < Self::norm(imm64))),
                Op::Xori => set!(a ^ imm64),
                Op::Ori => set!(a | imm64),
                Op::Andi => set!(a & imm64),
                Op::Slli => set!(a << imm),
                Op::Srli => set!(a >> imm),
                Op::Srai => set!((Self::signed(a) >> imm) as u64),
                Op::Add => set!(a.wrapping_add(b)),
                Op::Sub => set!(a.wrapping_sub(b)),
                Op::Sll => set!(a << (b & if RV64 { 63 } else { 31 })),
                Op::Slt => set!(u64::from(Self::signed(a) < Self::signed(b))),
                Op::Sltu => set!(u64::from(a < b)),
                Op::Xor => set!(a ^ b),
                Op::Srl => set!(a >> (b & if RV64 { 63 } else { 31 })),
                Op::Sra => set!((Self::signed(a) >> (b & if RV64 { 63 } else { 31 })) as u64),
                Op::Or => set!(a | b),
                Op::And => set!(a & b),
                Op::Mul => set!(a.wrapping_mul(b)),
                Op::Mulh => set!(if RV64 {
                    ((a as i64 as i128 * b as i64 as i128) >> 64) as u64
                } else {
                    ((Self::signed(a) * Self::signed(b)) >> 32) as u64
                }),
                Op::Mulhsu => set!(if RV64 {
                    ((a as i64 as i128 * b as u128 as i128) >> 64) as u64
                } else {
                    ((Self::signed(a) * b as i64) >> 32) as u64
                }),
                Op::Mulhu => set!(if RV64 {
                    ((a as u128 * b as u128) >> 64) as u64
                } else {
                    (a * b) >> 32
                }),
                Op::Div => set!(if b == 0 {
                    u64::MAX
                } else {
                    Self::signed(a).wrapping_div(Self::signed(b)) as u64
                }),
                Op::Divu => set!(a.checked_div(b).unwrap_or(u64::MAX)),
                Op::Rem => set!(if b == 0 {
                    a
                } else {
                    Self::signed(a).wrapping_rem(Self::signed(b)) as u64
                }),
                Op::Remu => set!(if b == 0 { a } else { a % b }),
                Op::Addiw => set!(Self::sext32(a.wrapping_add(imm64))),
                Op::Slliw => set!(Self::sext32(((a as u32) << imm) as u64)),
                Op::Srliw => set!(Self::sext32(((a as u32) >> imm) as u64)),
                Op::Sraiw => set!(((a as i32) >> imm) as i64 as u64),
                Op::Addw => set!(Self::sext32(a.wrapping_add(b))),
                Op::Subw => set!(Self::sext32(a.wrapping_sub(b))),
                Op::Sllw => set!(Self::sext32(((a as u32) << (b & 31)) as u64)),
                Op::Srlw => set!(Self::sext32(((a as u32) >> (b & 31)) as u64)),
                Op::Sraw => set!(((a as i32) >> (b & 31)) as i64 as u64),
                Op::Mulw => set!(Self::sext32((a as u32).wrapping_mul(b as u32) as u64)),
                Op::Divw => set!(if b as u32 == 0 {
                    u64::MAX
                } else {
                    (a as i32).wrapping_div(b as i32) as i64 as u64
                }),
                Op::Divuw => set!((a as u32)
                    .checked_div(b as u32)
                    .map_or(u64::MAX, |q| Self::sext32(q as u64))),
                Op::Remw => set!(if b as u32 == 0 {
                    Self::sext32(a)
                } else {
                    (a as i32).wrapping_rem(b as i32) as i64 as u64
                }),
                Op::Remuw => set!(if b as u32 == 0 {
                    Self::sext32(a)
                } else {
                    Self::sext32(((a as u32) % (b as u32)) as u64)
                }),
                Op::Ecall => {
                    self.cycles += 1;
                    self.pc = next;
                    return Trap::Ecall;
                }
                Op::Illegal(why) => {
                    return Trap::Fault(Fault::IllegalInstruction {
                        word: imm as u32,
                        why: why.why(),
                    })
                }
                Op::NotExecutable => return Trap::Fault(Fault::PcOutOfBounds),
            }
            self.cycles += 1;
            self.pc = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::Segment;

    /// An image whose only segment is `words` of code at 0x10000.
    fn code(words: &[u32]) -> Image {
        let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Image {
            entry: 0x10000,
            segments: vec![Segment {
                vaddr: 0x10000,
                mem_size: data.len() as u64,
                flags: PF_X | PF_R,
                data,
            }],
            sp1_untrusted_heap: None,
            sp1_trap_context: None,
        }
    }

    fn machine<const RV64: bool>(image: &Image) -> Machine<RV64> {
        Machine::<RV64>::new(image, 0x1000, 1 << 32, 1 << 20).unwrap()
    }

    /// Builds a machine whose code is `words` at 0x10000 and runs it until
    /// the first ecall.
    fn run<const RV64: bool>(words: &[u32]) -> Machine<RV64> {
        let mut m = machine::<RV64>(&code(words));
        assert_eq!(m.run(1000), Trap::Ecall);
        m
    }

    const ECALL: u32 = 0x73;

    #[test]
    fn rv32_arithmetic_wraps_at_32_bits() {
        // li a0, -1 ; addi a0, a0, 2 ; lui a1, 0x80000 ; addi a2, a1, -1 ; ecall
        let m = run::<false>(&[0xfff00513, 0x00250513, 0x800005b7, 0xfff58613, ECALL]);
        assert_eq!(m.reg(10), 1);
        assert_eq!(m.reg(11), 0x8000_0000);
        assert_eq!(m.reg(12), 0x7fff_ffff);
    }

    #[test]
    fn rv64_lui_sign_extends_and_w_ops_truncate() {
        // lui a1, 0x80000 ; addiw a2, a1, -1 ; ecall
        let m = run::<true>(&[0x800005b7, 0xfff5861b, ECALL]);
        assert_eq!(m.reg(11), 0xffff_ffff_8000_0000);
        assert_eq!(m.reg(12), 0x7fff_ffff);
    }

    #[test]
    fn division_edge_cases_follow_the_spec() {
        // li a0, 7 ; li a1, 0 ; div a2, a0, a1 ; rem a3, a0, a1 ; divu a4, a0, a1 ; ecall
        let m = run::<false>(&[0x00700513, 0x00000593, 0x02b54633, 0x02b566b3, 0x02b55733, ECALL]);
        assert_eq!(m.reg(12), 0xffff_ffff);
        assert_eq!(m.reg(13), 7);
        assert_eq!(m.reg(14), 0xffff_ffff);
        // lui a0, 0x80000 (INT_MIN) ; li a1, -1 ; div a2, a0, a1 ; rem a3, a0, a1 ; ecall
        let m = run::<false>(&[0x80000537, 0xfff00593, 0x02b54633, 0x02b566b3, ECALL]);
        assert_eq!(m.reg(12), 0x8000_0000);
        assert_eq!(m.reg(13), 0);
    }

    #[test]
    fn mulh_variants() {
        // li a0, -2 ; li a1, 3 ; mulh a2,a0,a1 ; mulhu a3,a0,a1 ; mulhsu a4,a0,a1 ; mul a5,a0,a1 ; ecall
        let m = run::<false>(&[
            0xffe00513, 0x00300593, 0x02b51633, 0x02b536b3, 0x02b52733, 0x02b507b3, ECALL,
        ]);
        assert_eq!(m.reg(12), 0xffff_ffff); // -6 >> 32
        assert_eq!(m.reg(13), 2); // (2^32-2)*3 >> 32
        assert_eq!(m.reg(14), 0xffff_ffff);
        assert_eq!(m.reg(15), (-6i32) as u32 as u64);
    }

    #[test]
    fn x0_stays_zero() {
        // addi x0, x0, 5 ; add a0, x0, x0 ; ecall
        let m = run::<false>(&[0x00500013, 0x00000533, ECALL]);
        assert_eq!(m.reg(0), 0);
        assert_eq!(m.reg(10), 0);
    }

    #[test]
    fn loads_sign_and_zero_extend() {
        // lui a0, 0x20 (0x20000) ; li a1, -1 ; sw a1, 0(a0) ; lb a2, 0(a0) ; lbu a3, 0(a0) ; lhu a4, 0(a0) ; ecall
        let m = run::<false>(&[
            0x00020537, 0xfff00593, 0x00b52023, 0x00050603, 0x00054683, 0x00055703, ECALL,
        ]);
        assert_eq!(m.reg(12), 0xffff_ffff);
        assert_eq!(m.reg(13), 0xff);
        assert_eq!(m.reg(14), 0xffff);
    }

    /// auipc a0, 0 ; li a1, 0x73 (ecall) ; sw a1, 12(a0) ; an illegal word
    /// (0) that the store turns into an ecall.
    const STORES_AN_ECALL_OVER_ITSELF: [u32; 4] = [0x00000517, 0x07300593, 0x00b52623, 0x0000_0000];

    #[test]
    fn risc0_runs_what_a_store_wrote_into_its_text() {
        // RISC Zero fetches every instruction from memory.
        let m = run::<false>(&STORES_AN_ECALL_OVER_ITSELF);
        assert_eq!(m.pc, 0x10010);
    }

    #[test]
    fn sp1_runs_its_text_as_loaded_whatever_is_stored_there() {
        // SP1 v6 executes the program it decoded at load; the store changes
        // memory (a load sees it) but not the code that runs.
        let data: Vec<u8> = STORES_AN_ECALL_OVER_ITSELF
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let image = Image {
            entry: 0x10000,
            segments: vec![Segment {
                vaddr: 0x10000,
                mem_size: data.len() as u64,
                flags: PF_X | PF_R,
                data,
            }],
            sp1_untrusted_heap: None,
            sp1_trap_context: None,
        };
        let mut m = Machine::<true>::new(&image, 0x1000, 1 << 32, 1 << 20).unwrap();
        assert!(
            matches!(
                m.run(1000),
                Trap::Fault(Fault::IllegalInstruction { word: 0, .. })
            ),
            "SP1 ran the stored word"
        );
        assert_eq!(m.mem.load(0x1000c, 4).unwrap(), 0x73, "the store reached memory");
    }

    /// Issue 19, item 14: a host write (RISC Zero `SYS_READ`) that starts
    /// below the text and covers all of it left the decoded code stale.
    #[test]
    fn a_host_write_covering_the_whole_text_from_below_is_decoded() {
        // Two illegal words at 0x10000; the write covers 0xfffc..0x1000c,
        // from below the text to past its end.
        let image = Image {
            entry: 0x10000,
            segments: vec![
                Segment {
                    vaddr: 0xf000,
                    mem_size: 0x1000,
                    flags: PF_R | crate::elf::PF_W,
                    data: Vec::new(),
                },
                Segment {
                    vaddr: 0x10000,
                    mem_size: 8,
                    flags: PF_X | PF_R,
                    data: vec![0; 8],
                },
            ],
            sp1_untrusted_heap: None,
            sp1_trap_context: None,
        };
        let mut m = machine::<false>(&image);
        let mut bytes = vec![0xaa; 4];
        bytes.extend(0x00100513u32.to_le_bytes()); // li a0, 1
        bytes.extend(ECALL.to_le_bytes());
        bytes.extend([0xbb; 4]);
        m.host_write(0xfffc, &bytes).unwrap();
        assert_eq!(m.run(1000), Trap::Ecall);
        assert_eq!(m.reg(10), 1);
    }

    /// Issue 19, item 14: a jump to text+2 was reported as leaving the
    /// executable segments.
    #[test]
    fn a_jump_to_a_misaligned_address_says_so() {
        // auipc a0, 0 ; jalr x0, 6(a0) -> 0x10006
        let mut m = machine::<false>(&code(&[0x00000517, 0x00650067, ECALL, ECALL]));
        let trap = m.run(1000);
        assert_eq!(trap, Trap::Fault(Fault::PcMisaligned));
        let Trap::Fault(f) = trap else { unreachable!() };
        assert!(f.to_string().contains("not 4-byte aligned"), "{f}");
    }

    #[test]
    fn cycle_limit_stops_an_endless_loop() {
        let mut m = machine::<false>(&code(&[0x0000006f])); // j .
        assert_eq!(m.run(500), Trap::CycleLimit);
        assert_eq!(m.cycles, 500);
    }
}
