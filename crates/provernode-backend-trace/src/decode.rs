//! RV32IM / RV64IM instruction decoding into a compact form the interpreter
//! dispatches on. Executable segments are decoded once at load time.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Ld,
    Lbu,
    Lhu,
    Lwu,
    Sb,
    Sh,
    Sw,
    Sd,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    Addiw,
    Slliw,
    Srliw,
    Sraiw,
    Addw,
    Subw,
    Sllw,
    Srlw,
    Sraw,
    Mulw,
    Divw,
    Divuw,
    Remw,
    Remuw,
    Ecall,
    /// Not an instruction the ABI executes; `imm` holds the raw word.
    Illegal(Illegal),
    /// A word in the code range that no executable segment covers.
    NotExecutable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Illegal {
    Unknown,
    Compressed,
    Rv64Only,
    Fence,
    System,
    Atomic,
    Float,
    Ebreak,
}

impl Illegal {
    pub fn why(self) -> &'static str {
        match self {
            Illegal::Unknown => "unknown encoding",
            Illegal::Compressed => {
                "compressed (C extension) encodings are not supported by zkVMs; build without the C extension"
            }
            Illegal::Rv64Only => "an RV64-only instruction in an RV32IM program",
            Illegal::Fence => "fence instructions are not part of the zkVM ABIs",
            Illegal::System => "CSR and privileged instructions are not part of the zkVM ABIs",
            Illegal::Atomic => "atomic (A extension) instructions are not supported",
            Illegal::Float => "floating point is not supported; build with an integer-only -march",
            Illegal::Ebreak => "ebreak",
        }
    }
}

/// A decoded instruction. `rd` is 32 (a write-only scratch slot) when the
/// destination is x0, so the interpreter never needs to test for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub imm: i32,
}

impl Insn {
    pub const NOT_EXECUTABLE: Insn = Insn {
        op: Op::NotExecutable,
        rd: 32,
        rs1: 0,
        rs2: 0,
        imm: 0,
    };
}

fn illegal(word: u32, why: Illegal) -> Insn {
    Insn {
        op: Op::Illegal(why),
        rd: 32,
        rs1: 0,
        rs2: 0,
        imm: word as i32,
    }
}

/// Decodes one 32-bit word for RV32IM (`rv64 = false`) or RV64IM.
pub fn decode(word: u32, rv64: bool) -> Insn {
    if word & 0b11 != 0b11 {
        return illegal(word, Illegal::Compressed);
    }
    let opcode = word & 0x7f;
    let rd = ((word >> 7) & 0x1f) as u8;
    let funct3 = (word >> 12) & 0x7;
    let rs1 = ((word >> 15) & 0x1f) as u8;
    let rs2 = ((word >> 20) & 0x1f) as u8;
    let funct7 = word >> 25;
    let imm_i = (word as i32) >> 20;
    let imm_s = ((word as i32) >> 25 << 5) | ((word >> 7) & 0x1f) as i32;
    let imm_b = (((word as i32) >> 31) << 12)
        | (((word >> 7) & 1) << 11) as i32
        | (((word >> 25) & 0x3f) << 5) as i32
        | (((word >> 8) & 0xf) << 1) as i32;
    let imm_u = (word & 0xffff_f000) as i32;
    let imm_j = (((word as i32) >> 31) << 20)
        | (word & 0x000f_f000) as i32
        | (((word >> 20) & 1) << 11) as i32
        | (((word >> 21) & 0x3ff) << 1) as i32;
    let rd = if rd == 0 { 32 } else { rd };
    let mk = |op: Op, imm: i32| Insn {
        op,
        rd,
        rs1,
        rs2,
        imm,
    };
    let rv64_only = |op: Op, imm: i32| {
        if rv64 {
            mk(op, imm)
        } else {
            illegal(word, Illegal::Rv64Only)
        }
    };
    let shamt_mask: u32 = if rv64 { 0x3f } else { 0x1f };
    match opcode {
        0x37 => mk(Op::Lui, imm_u),
        0x17 => mk(Op::Auipc, imm_u),
        0x6f => mk(Op::Jal, imm_j),
        0x67 if funct3 == 0 => mk(Op::Jalr, imm_i),
        0x63 => match funct3 {
            0 => mk(Op::Beq, imm_b),
            1 => mk(Op::Bne, imm_b),
            4 => mk(Op::Blt, imm_b),
            5 => mk(Op::Bge, imm_b),
            6 => mk(Op::Bltu, imm_b),
            7 => mk(Op::Bgeu, imm_b),
            _ => illegal(word, Illegal::Unknown),
        },
        0x03 => match funct3 {
            0 => mk(Op::Lb, imm_i),
            1 => mk(Op::Lh, imm_i),
            2 => mk(Op::Lw, imm_i),
            3 => rv64_only(Op::Ld, imm_i),
            4 => mk(Op::Lbu, imm_i),
            5 => mk(Op::Lhu, imm_i),
            6 => rv64_only(Op::Lwu, imm_i),
            _ => illegal(word, Illegal::Unknown),
        },
        0x23 => match funct3 {
            0 => mk(Op::Sb, imm_s),
            1 => mk(Op::Sh, imm_s),
            2 => mk(Op::Sw, imm_s),
            3 => rv64_only(Op::Sd, imm_s),
            _ => illegal(word, Illegal::Unknown),
        },
        0x13 => {
            let shamt = ((word >> 20) & 0x3f) as i32;
            // For shifts, bits above the shamt must be 0 (or 0x20 << 5 for srai).
            let shift_hi = word >> 26;
            let shamt_ok = (word >> 20) & 0x3f & !shamt_mask == 0;
            match funct3 {
                0 => mk(Op::Addi, imm_i),
                2 => mk(Op::Slti, imm_i),
                3 => mk(Op::Sltiu, imm_i),
                4 => mk(Op::Xori, imm_i),
                6 => mk(Op::Ori, imm_i),
                7 => mk(Op::Andi, imm_i),
                1 if shift_hi == 0 && shamt_ok => mk(Op::Slli, shamt),
                5 if shift_hi == 0 && shamt_ok => mk(Op::Srli, shamt),
                5 if shift_hi == 0x10 && shamt_ok => mk(Op::Srai, shamt),
                _ => illegal(word, Illegal::Unknown),
            }
        }
        0x33 => match (funct7, funct3) {
            (0x00, 0) => mk(Op::Add, 0),
            (0x20, 0) => mk(Op::Sub, 0),
            (0x00, 1) => mk(Op::Sll, 0),
            (0x00, 2) => mk(Op::Slt, 0),
            (0x00, 3) => mk(Op::Sltu, 0),
            (0x00, 4) => mk(Op::Xor, 0),
            (0x00, 5) => mk(Op::Srl, 0),
            (0x20, 5) => mk(Op::Sra, 0),
            (0x00, 6) => mk(Op::Or, 0),
            (0x00, 7) => mk(Op::And, 0),
            (0x01, 0) => mk(Op::Mul, 0),
            (0x01, 1) => mk(Op::Mulh, 0),
            (0x01, 2) => mk(Op::Mulhsu, 0),
            (0x01, 3) => mk(Op::Mulhu, 0),
            (0x01, 4) => mk(Op::Div, 0),
            (0x01, 5) => mk(Op::Divu, 0),
            (0x01, 6) => mk(Op::Rem, 0),
            (0x01, 7) => mk(Op::Remu, 0),
            _ => illegal(word, Illegal::Unknown),
        },
        0x1b => {
            let shamt = ((word >> 20) & 0x1f) as i32;
            match (funct3, funct7) {
                (0, _) => rv64_only(Op::Addiw, imm_i),
                (1, 0x00) => rv64_only(Op::Slliw, shamt),
                (5, 0x00) => rv64_only(Op::Srliw, shamt),
                (5, 0x20) => rv64_only(Op::Sraiw, shamt),
                _ => illegal(word, if rv64 { Illegal::Unknown } else { Illegal::Rv64Only }),
            }
        }
        0x3b => match (funct7, funct3) {
            (0x00, 0) => rv64_only(Op::Addw, 0),
            (0x20, 0) => rv64_only(Op::Subw, 0),
            (0x00, 1) => rv64_only(Op::Sllw, 0),
            (0x00, 5) => rv64_only(Op::Srlw, 0),
            (0x20, 5) => rv64_only(Op::Sraw, 0),
            (0x01, 0) => rv64_only(Op::Mulw, 0),
            (0x01, 4) => rv64_only(Op::Divw, 0),
            (0x01, 5) => rv64_only(Op::Divuw, 0),
            (0x01, 6) => rv64_only(Op::Remw, 0),
            (0x01, 7) => rv64_only(Op::Remuw, 0),
            _ => illegal(word, if rv64 { Illegal::Unknown } else { Illegal::Rv64Only }),
        },
        0x73 => match word {
            0x0000_0073 => mk(Op::Ecall, 0),
            0x0010_0073 => illegal(word, Illegal::Ebreak),
            _ => illegal(word, Illegal::System),
        },
        0x0f => illegal(word, Illegal::Fence),
        0x2f => illegal(word, Illegal::Atomic),
        0x07 | 0x27 | 0x43 | 0x47 | 0x4b | 0x4f | 0x53 => illegal(word, Illegal::Float),
        _ => illegal(word, Illegal::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_immediates_of_every_format() {
        // addi a0, a0, -1
        let i = decode(0xfff5_0513, false);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Addi, 10, 10, -1));
        // sw a4, -4(sp)
        let i = decode(0xfee1_2e23, false);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sw, 2, 14, -4));
        // beq a2, zero, +32
        let i = decode(0x0206_0063, false);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Beq, 12, 0, 32));
        // bne a5, a2, -16
        let i = decode(0xfec7_98e3, false);
        assert_eq!((i.op, i.imm), (Op::Bne, -16));
        // jal zero, 0 (rd x0 becomes the scratch slot)
        let i = decode(0x0000_006f, false);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 32, 0));
        // jal ra, -2048
        let i = decode(0x801f_f0ef, false);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 1, -2048));
        // lui sp, 0x200
        let i = decode(0x0020_0137, false);
        assert_eq!((i.op, i.rd, i.imm), (Op::Lui, 2, 0x200 << 12));
    }

    #[test]
    fn shift_immediates_depend_on_xlen() {
        // slli a0, a0, 32 is RV64-only.
        let word = 0x0205_1513;
        assert_eq!(decode(word, true).op, Op::Slli);
        assert_eq!(decode(word, true).imm, 32);
        assert!(matches!(decode(word, false).op, Op::Illegal(Illegal::Unknown)));
        // srai a0, a0, 3
        let i = decode(0x4035_5513, false);
        assert_eq!((i.op, i.imm), (Op::Srai, 3));
    }

    #[test]
    fn rejects_what_zkvms_do_not_run() {
        assert!(matches!(
            decode(0x0000_4501, false).op,
            Op::Illegal(Illegal::Compressed)
        ));
        assert!(matches!(
            decode(0x0ff0_000f, false).op,
            Op::Illegal(Illegal::Fence)
        ));
        assert!(matches!(
            decode(0x3400_2573, false).op,
            Op::Illegal(Illegal::System)
        ));
        assert!(matches!(
            decode(0x0010_0073, false).op,
            Op::Illegal(Illegal::Ebreak)
        ));
        assert!(matches!(
            decode(0x1005_252f, false).op,
            Op::Illegal(Illegal::Atomic)
        ));
        assert!(matches!(
            decode(0x0000_0000, false).op,
            Op::Illegal(Illegal::Compressed)
        ));
        assert!(matches!(decode(0xffff_ffff, false).op, Op::Illegal(_)));
        // ld a0, 0(a0) and addw are RV64-only.
        assert!(matches!(
            decode(0x0005_3503, false).op,
            Op::Illegal(Illegal::Rv64Only)
        ));
        assert_eq!(decode(0x0005_3503, true).op, Op::Ld);
        assert!(matches!(
            decode(0x00b5_053b, false).op,
            Op::Illegal(Illegal::Rv64Only)
        ));
        assert_eq!(decode(0x00b5_053b, true).op, Op::Addw);
    }
}
