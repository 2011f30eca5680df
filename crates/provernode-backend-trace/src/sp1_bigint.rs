//! SP1 v6's big-number precompiles and hooks: elliptic-curve points, field
//! and quadratic-extension arithmetic, 256-bit multiplication, and the host
//! hooks that hand a guest square roots and inverses to check. Semantics
//! are those of SP1 6.10's executor (`minimal/precompiles/{ec,fptower,
//! uint256}.rs` and `hook.rs` in succinctlabs/sp1); the arithmetic is
//! `num-bigint`'s.
//!
//! Memory holds numbers as little-endian 64-bit words: a field element of a
//! 256-bit field is 4 words, of BLS12-381's 6; a point is x then y. Where
//! SP1's executor panics (adding a point to itself on a curve whose
//! precompile refuses it, an inverse of zero, a hook buffer of the wrong
//! length) trace stops with an error saying so.

use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::machine::{Machine, Trap};
use crate::sp1_precompiles::{read_words, write_words};

fn bad(detail: String) -> Trap {
    Trap::Fault(provernode_core::Fault::BadSyscall { detail })
}

fn hex_modulus(hex: &str) -> BigUint {
    // The constants below are valid hex; an empty number would only come
    // from an edit gone wrong, and is caught by the unit tests.
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap_or_default()
}

/// A short-Weierstrass curve `y^2 = x^3 + a x + b` over a prime field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    Secp256k1,
    Secp256r1,
    Bn254,
    Bls12381,
}

impl Curve {
    pub fn name(self) -> &'static str {
        match self {
            Curve::Secp256k1 => "secp256k1",
            Curve::Secp256r1 => "secp256r1",
            Curve::Bn254 => "BN254",
            Curve::Bls12381 => "BLS12-381",
        }
    }

    pub fn modulus(self) -> BigUint {
        hex_modulus(match self {
            Curve::Secp256k1 => "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f",
            Curve::Secp256r1 => "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
            Curve::Bn254 => "30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47",
            Curve::Bls12381 => {
                "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab"
            }
        })
    }

    fn a(self) -> BigUint {
        match self {
            Curve::Secp256r1 => self.modulus() - 3u32,
            _ => BigUint::zero(),
        }
    }

    /// 64-bit words in one field element.
    pub fn words(self) -> usize {
        match self {
            Curve::Bls12381 => 6,
            _ => 4,
        }
    }
}

fn from_words(words: &[u64]) -> BigUint {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    BigUint::from_bytes_le(&bytes)
}

fn to_words(value: &BigUint, n: usize) -> Vec<u64> {
    let mut words = value.to_u64_digits();
    words.resize(n, 0);
    words
}

fn inverse(value: &BigUint, modulus: &BigUint) -> BigUint {
    value.modpow(&(modulus - 2u32), modulus)
}

fn sub_mod(a: &BigUint, b: &BigUint, p: &BigUint) -> BigUint {
    ((a % p) + p - (b % p)) % p
}

fn check_aligned(what: &str, ptr: u64) -> Result<(), Trap> {
    if ptr % 8 != 0 {
        return Err(bad(format!("{what} pointer {ptr:#x} is not 8-aligned")));
    }
    Ok(())
}

fn read_point(m: &Machine<true>, curve: Curve, ptr: u64) -> Result<(BigUint, BigUint), Trap> {
    let n = curve.words();
    let words = read_words(m, ptr, 2 * n)?;
    Ok((from_words(&words[..n]), from_words(&words[n..])))
}

fn write_point(
    m: &mut Machine<true>,
    curve: Curve,
    ptr: u64,
    (x, y): (BigUint, BigUint),
) -> Result<(), Trap> {
    let n = curve.words();
    let mut words = to_words(&x, n);
    words.extend(to_words(&y, n));
    write_words(m, ptr, &words)
}

/// `a - b` where SP1's executor subtracts unsigned big integers (dashu's
/// `UBig`), which panics on an underflow: only a coordinate at or above the
/// field's modulus can cause one.
fn sp1_sub(curve: Curve, a: &BigUint, b: &BigUint) -> Result<BigUint, Trap> {
    if a < b {
        return Err(bad(format!(
            "a {} point with a coordinate that is not reduced below the field's modulus makes SP1's executor underflow and stop",
            curve.name()
        )));
    }
    Ok(a - b)
}

/// secp256k1 goes through k256 in SP1's executor: each point must have
/// canonical coordinates and lie on the curve (SEC1 decoding), or it stops.
fn check_secp256k1_point((x, y): &(BigUint, BigUint)) -> Result<(), Trap> {
    let p = Curve::Secp256k1.modulus();
    if x >= &p || y >= &p || (y * y) % &p != (x * x * x + 7u32) % &p {
        return Err(bad(
            "a secp256k1 point that is not on the curve (or not in canonical form); SP1's executor decodes it with k256 and stops"
                .to_owned(),
        ));
    }
    Ok(())
}

/// x3 = slope² − x1 − x2 and y3 = slope·(x1 − x3) − y1, exactly as SP1's
/// executor writes them (`sw_add`, `sw_double`): from unreduced sums, so an
/// unreduced input underflows there as it would in SP1.
fn from_slope(
    curve: Curve,
    slope: &BigUint,
    (x1, y1): &(BigUint, BigUint),
    x2: &BigUint,
) -> Result<(BigUint, BigUint), Trap> {
    let p = curve.modulus();
    let x3 = sp1_sub(curve, &(slope * slope + &p + &p), &(x1 + x2))? % &p;
    let y3 = sp1_sub(curve, &(slope * sp1_sub(curve, &(&p + x1), &x3)? + &p), y1)? % &p;
    Ok((x3, y3))
}

/// `*_DOUBLE`'s arithmetic. secp256k1 (k256): a point with y = 0 has no
/// double and stops SP1 ("the point at infinity"). The other curves use
/// SP1's generic formula, where an inverse is x^(p−2), so y = 0 gives a
/// slope of 0 and a result, not an error.
fn double_point(curve: Curve, point: &(BigUint, BigUint)) -> Result<(BigUint, BigUint), Trap> {
    let p = curve.modulus();
    let (x, y) = point;
    if curve == Curve::Secp256k1 {
        check_secp256k1_point(point)?;
        if y.is_zero() {
            return Err(bad(
                "secp256k1 DOUBLE of a point with y = 0: the result is the point at infinity, and SP1's executor stops on it"
                    .to_owned(),
            ));
        }
    }
    let numerator = (curve.a() + x * x * 3u32) % &p;
    let slope = numerator * inverse(&((y * 2u32) % &p), &p) % &p;
    from_slope(curve, &slope, point, x)
}

/// `*_ADD`: p += q, in place at `p_ptr`, as SP1 6.10's executor adds:
/// secp256k1 through k256 (a point plus itself is its double; equal x
/// otherwise stops it, "the point at infinity"), the other curves with
/// SP1's generic formula (equal points stop it; opposite points give a
/// slope of 0 and a result).
pub fn ec_add(m: &mut Machine<true>, curve: Curve, p_ptr: u64, q_ptr: u64) -> Result<(), Trap> {
    check_aligned(&format!("{}_ADD", curve.name()), p_ptr)?;
    check_aligned(&format!("{}_ADD", curve.name()), q_ptr)?;
    let p1 = read_point(m, curve, p_ptr)?;
    let p2 = read_point(m, curve, q_ptr)?;
    let p = curve.modulus();
    let result = if p1 == p2 {
        if curve != Curve::Secp256k1 {
            return Err(bad(format!(
                "{}_ADD of a point to itself; SP1's executor stops on it (\"Points are the same. Use sw_double instead.\")",
                curve.name()
            )));
        }
        double_point(curve, &p1)?
    } else if curve == Curve::Secp256k1 {
        check_secp256k1_point(&p1)?;
        check_secp256k1_point(&p2)?;
        if p1.0 == p2.0 {
            return Err(bad(
                "secp256k1_ADD of opposite points: the result is the point at infinity, and SP1's executor stops on it"
                    .to_owned(),
            ));
        }
        let slope = sub_mod(&p2.1, &p1.1, &p) * inverse(&sub_mod(&p2.0, &p1.0, &p), &p) % &p;
        from_slope(curve, &slope, &p1, &p2.0)?
    } else {
        let numerator = sp1_sub(curve, &(&p + &p2.1), &p1.1)? % &p;
        let denominator = sp1_sub(curve, &(&p + &p2.0), &p1.0)? % &p;
        let slope = numerator * inverse(&denominator, &p) % &p;
        from_slope(curve, &slope, &p1, &p2.0)?
    };
    write_point(m, curve, p_ptr, result)
}

/// `*_DOUBLE`: p = 2p, in place.
pub fn ec_double(m: &mut Machine<true>, curve: Curve, p_ptr: u64) -> Result<(), Trap> {
    check_aligned(&format!("{}_DOUBLE", curve.name()), p_ptr)?;
    let point = read_point(m, curve, p_ptr)?;
    let doubled = double_point(curve, &point)?;
    write_point(m, curve, p_ptr, doubled)
}

#[derive(Clone, Copy, Debug)]
pub enum FieldOp {
    Add,
    Sub,
    Mul,
}

/// `*_FP_{ADD,SUB,MUL}`: x = x op y mod p, in place at `x_ptr`.
pub fn fp_op(m: &mut Machine<true>, curve: Curve, op: FieldOp, x_ptr: u64, y_ptr: u64) -> Result<(), Trap> {
    check_aligned("FP", x_ptr)?;
    check_aligned("FP", y_ptr)?;
    let n = curve.words();
    let p = curve.modulus();
    let a = from_words(&read_words(m, x_ptr, n)?) % &p;
    let b = from_words(&read_words(m, y_ptr, n)?) % &p;
    let r = match op {
        FieldOp::Add => (a + b) % &p,
        FieldOp::Sub => sub_mod(&a, &b, &p),
        FieldOp::Mul => (a * b) % &p,
    };
    write_words(m, x_ptr, &to_words(&r, n))
}

/// `*_FP2_{ADD,SUB,MUL}`: x = x op y in F_p[u]/(u^2 + 1), in place; an
/// element is c0 then c1.
pub fn fp2_op(m: &mut Machine<true>, curve: Curve, op: FieldOp, x_ptr: u64, y_ptr: u64) -> Result<(), Trap> {
    check_aligned("FP2", x_ptr)?;
    check_aligned("FP2", y_ptr)?;
    let n = curve.words();
    let p = curve.modulus();
    let x = read_words(m, x_ptr, 2 * n)?;
    let y = read_words(m, y_ptr, 2 * n)?;
    let (a0, a1) = (from_words(&x[..n]) % &p, from_words(&x[n..]) % &p);
    let (b0, b1) = (from_words(&y[..n]) % &p, from_words(&y[n..]) % &p);
    let (c0, c1) = match op {
        FieldOp::Add => ((&a0 + &b0) % &p, (&a1 + &b1) % &p),
        FieldOp::Sub => (sub_mod(&a0, &b0, &p), sub_mod(&a1, &b1, &p)),
        FieldOp::Mul => (
            sub_mod(&(&a0 * &b0 % &p), &(&a1 * &b1 % &p), &p),
            (&a0 * &b1 % &p + &a1 * &b0 % &p) % &p,
        ),
    };
    let mut words = to_words(&c0, n);
    words.extend(to_words(&c1, n));
    write_words(m, x_ptr, &words)
}

/// UINT256_MUL: x = x * y mod m (m = 2^256 when it is zero), where m follows
/// y in memory.
pub fn uint256_mul(m: &mut Machine<true>, x_ptr: u64, y_ptr: u64) -> Result<(), Trap> {
    check_aligned("UINT256_MUL", x_ptr)?;
    check_aligned("UINT256_MUL", y_ptr)?;
    let x = from_words(&read_words(m, x_ptr, 4)?);
    let ym = read_words(m, y_ptr, 8)?;
    let (y, modulus) = (from_words(&ym[..4]), from_words(&ym[4..]));
    let modulus = if modulus.is_zero() {
        BigUint::one() << 256
    } else {
        modulus
    };
    write_words(m, x_ptr, &to_words(&((x * y) % modulus), 4))
}

/// UINT256_ADD_CARRY and UINT256_MUL_CARRY: with a = `a0`, b = `a1`, c =
/// `a2`, the 512-bit a + b + c (or a · b + c) is written as its low 256 bits
/// at `a3` and its high 256 bits at `a4`.
pub fn uint256_carry(m: &mut Machine<true>, mul: bool) -> Result<(), Trap> {
    let regs = |r: usize| m.reg(r);
    let (a_ptr, b_ptr, c_ptr, d_ptr, e_ptr) = (regs(10), regs(11), regs(12), regs(13), regs(14));
    for ptr in [a_ptr, b_ptr, c_ptr, d_ptr, e_ptr] {
        check_aligned("UINT256 carry", ptr)?;
    }
    let a = from_words(&read_words(m, a_ptr, 4)?);
    let b = from_words(&read_words(m, b_ptr, 4)?);
    let c = from_words(&read_words(m, c_ptr, 4)?);
    let r = if mul { a * b + c } else { a + b + c };
    let words = to_words(&r, 8);
    write_words(m, d_ptr, &words[..4])?;
    write_words(m, e_ptr, &words[4..])
}

fn ed25519_modulus() -> BigUint {
    (BigUint::one() << 255) - 19u32
}

fn ed25519_d() -> BigUint {
    hex_modulus("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3")
}

/// SP1's `ed25519_sqrt`: a^((p+3)/8), times sqrt(-1) when that squares to
/// -a; the even root.
fn ed25519_sqrt(a: &BigUint) -> Option<BigUint> {
    let p = ed25519_modulus();
    let mut beta = a.modpow(&((&p + 3u32) / 8u32), &p);
    let sqrt_m1 = hex_modulus("2b8324804fc1df0b2b4d00993dfbd7a72f431806ad2fe478c4ee1b274a0ea0b0");
    let beta_squared = &beta * &beta % &p;
    let neg_a = (&p - (a % &p)) % &p;
    if beta_squared == neg_a {
        beta = &beta * &sqrt_m1 % &p;
    }
    if beta_squared != *a && beta_squared != neg_a {
        return None;
    }
    if beta.bit(0) {
        beta = (&p - &beta) % &p;
    }
    Some(beta)
}

/// ED_ADD: p += q on edwards25519 (complete twisted Edwards addition, a = -1).
pub fn ed_add(m: &mut Machine<true>, p_ptr: u64, q_ptr: u64) -> Result<(), Trap> {
    check_aligned("ED_ADD", p_ptr)?;
    check_aligned("ED_ADD", q_ptr)?;
    let p = ed25519_modulus();
    let a = read_words(m, p_ptr, 8)?;
    let b = read_words(m, q_ptr, 8)?;
    let (x1, y1) = (from_words(&a[..4]), from_words(&a[4..]));
    let (x2, y2) = (from_words(&b[..4]), from_words(&b[4..]));
    let x3n = (&x1 * &y2 + &y1 * &x2) % &p;
    let y3n = (&y1 * &y2 + &x1 * &x2) % &p;
    let dxy = ed25519_d() * (&x1 * &y1 * &x2 * &y2 % &p) % &p;
    let den_x = inverse(&((BigUint::one() + &dxy) % &p), &p);
    let den_y = inverse(&((BigUint::one() + &p - &dxy) % &p), &p);
    let mut words = to_words(&(x3n * den_x % &p), 4);
    words.extend(to_words(&(y3n * den_y % &p), 4));
    write_words(m, p_ptr, &words)
}

/// ED_DECOMPRESS: the 32 bytes after `ptr` hold y (its top bit ignored);
/// x with the given sign is written to the 32 bytes at `ptr`.
pub fn ed_decompress(m: &mut Machine<true>, ptr: u64, sign: u64) -> Result<(), Trap> {
    check_aligned("ED_DECOMPRESS", ptr)?;
    if sign > 1 {
        return Err(bad(format!("ED_DECOMPRESS sign {sign} is not 0 or 1")));
    }
    let p = ed25519_modulus();
    let mut y_bytes: Vec<u8> = read_words(m, ptr + 32, 4)?
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    y_bytes[31] &= 0x7f;
    let y = BigUint::from_bytes_le(&y_bytes);
    let yy = &y * &y % &p;
    let u = (&yy + &p - 1u32) % &p;
    let v = (&yy * ed25519_d() + 1u32) % &p;
    let x = ed25519_sqrt(&(u * inverse(&v, &p) % &p)).ok_or_else(|| {
        bad("ED_DECOMPRESS of a y that is on no point of edwards25519; SP1's executor stops on it".to_owned())
    })?;
    let x = if sign == 1 { (&p - &x) % &p } else { x };
    write_words(m, ptr, &to_words(&x, 4))
}

/// Big-endian bytes of `value`, left-padded to `len`.
fn pad_be(value: &BigUint, len: usize) -> Vec<u8> {
    let mut bytes = value.to_bytes_le();
    bytes.resize(len, 0);
    bytes.reverse();
    bytes
}

fn hook_error(hook: &str, why: impl std::fmt::Display) -> Trap {
    bad(format!("SP1's {hook} hook: {why}"))
}

/// A square root modulo a prime, as SP1's `sqrt_fp`: x^((p+1)/4) when
/// p = 3 mod 4, else Tonelli-Shanks with the given non-residue.
fn sqrt_mod(x: &BigUint, p: &BigUint, nqr: &BigUint) -> Option<BigUint> {
    let one = BigUint::one();
    if p % 4u32 == BigUint::from(3u32) {
        let root = x.modpow(&((p + 1u32) / 4u32), p);
        return (&root * &root % p == *x).then_some(root);
    }
    // Legendre symbol.
    if x.modpow(&((p - 1u32) / 2u32), p) != one {
        return None;
    }
    let mut s = 0u32;
    let mut q = p - 1u32;
    while (&q % 2u32).is_zero() {
        s += 1;
        q /= 2u32;
    }
    let mut c = nqr.modpow(&q, p);
    let mut r = x.modpow(&((&q + 1u32) / 2u32), p);
    let mut t = x.modpow(&q, p);
    let mut mm = s;
    while t != one {
        let mut i = 0u32;
        let mut tt = t.clone();
        while tt != one {
            tt = &tt * &tt % p;
            i += 1;
            if i == mm {
                return None;
            }
        }
        let b = c.modpow(&(BigUint::one() << (mm - i - 1)), p);
        r = r * &b % p;
        c = &b * &b % p;
        t = t * &c % p;
        mm = i;
    }
    Some(r)
}

/// The items a hook pushes to the front of the input stream, in order.
pub fn hook(fd: u64, buf: &[u8]) -> Result<Vec<Vec<u8>>, Trap> {
    match fd {
        15 => ecrecover(buf),
        18 | 19 => {
            let name = if fd == 18 {
                "BLS12-381 square root"
            } else {
                "BLS12-381 inverse"
            };
            if buf.len() < 48 {
                return Err(hook_error(
                    name,
                    format!("{} bytes; it takes a 48-byte element", buf.len()),
                ));
            }
            let p = Curve::Bls12381.modulus();
            let x = BigUint::from_bytes_be(&buf[..48]);
            if fd == 19 {
                if x.is_zero() {
                    return Err(hook_error(name, "the inverse of zero"));
                }
                return Ok(vec![pad_be(&inverse(&x, &p), 48)]);
            }
            if x.is_zero() {
                return Ok(vec![vec![1], vec![0; 48]]);
            }
            let exp = (&p + 1u32) / 4u32;
            let root = x.modpow(&exp, &p);
            if &root * &root % &p == x {
                return Ok(vec![vec![1], pad_be(&root, 48)]);
            }
            let qr = BigUint::from(2u32) * &x % &p;
            Ok(vec![vec![0], pad_be(&qr.modpow(&exp, &p), 48)])
        }
        20 | 21 => {
            let name = if fd == 20 {
                "field square root"
            } else {
                "field inverse"
            };
            let len = buf
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| hook_error(name, "no length"))?;
            let parts = if fd == 20 { 3 } else { 2 };
            if buf.len() != 4 + parts * len {
                return Err(hook_error(
                    name,
                    format!("{} bytes for elements of {len}", buf.len()),
                ));
            }
            let body = &buf[4..];
            let x = BigUint::from_bytes_be(&body[..len]);
            let p = BigUint::from_bytes_be(&body[len..2 * len]);
            if p.is_zero() {
                return Err(hook_error(name, "a zero modulus"));
            }
            if fd == 21 {
                if x.is_zero() {
                    return Err(hook_error(name, "the inverse of zero"));
                }
                return Ok(vec![pad_be(&inverse(&x, &p), len)]);
            }
            let nqr = BigUint::from_bytes_be(&body[2 * len..]);
            if x >= p || nqr >= p {
                return Err(hook_error(name, "a non-canonical element or non-residue"));
            }
            if x.is_zero() {
                return Ok(vec![vec![1], vec![0; len]]);
            }
            match sqrt_mod(&x, &p, &nqr) {
                Some(root) => Ok(vec![vec![1], pad_be(&root, len)]),
                None => {
                    let qr = &nqr * &x % &p;
                    let root = sqrt_mod(&qr, &p, &nqr)
                        .ok_or_else(|| hook_error(name, "the given non-residue is not one"))?;
                    Ok(vec![vec![0], pad_be(&root, len)])
                }
            }
        }
        17 => {
            let name = "RSA multiplication modulo";
            if ![768, 1152, 1536].contains(&buf.len()) {
                return Err(hook_error(
                    name,
                    format!("{} bytes; it takes 3 × the key size", buf.len()),
                ));
            }
            let len = buf.len() / 3;
            let product = BigUint::from_bytes_le(&buf[..2 * len]);
            let modulus = BigUint::from_bytes_le(&buf[2 * len..]);
            if modulus.is_zero() {
                return Err(hook_error(name, "a zero modulus"));
            }
            let (q, r) = (&product / &modulus, &product % &modulus);
            let mut r = r.to_bytes_le();
            r.resize(len, 0);
            let mut q = q.to_bytes_le();
            q.resize(len, 0);
            Ok(vec![r, q])
        }
        16 => {
            let name = "ed25519 decompression";
            if buf.len() != 64 {
                return Err(hook_error(name, format!("{} bytes; it takes 64", buf.len())));
            }
            let p = ed25519_modulus();
            let mut y_bytes = buf[..32].to_vec();
            y_bytes[31] &= 0x7f;
            let y = BigUint::from_bytes_le(&y_bytes);
            if y >= p {
                return Ok(vec![vec![0]]);
            }
            let v = BigUint::from_bytes_le(&buf[32..]);
            if v >= p || v.is_zero() {
                return Err(hook_error(name, "v is not a non-zero field element"));
            }
            let v_inv = inverse(&v, &p);
            let u_div_v = (&y * &y + &p - 1u32) % &p * &v_inv % &p;
            if ed25519_sqrt(&u_div_v).is_some() {
                return Ok(vec![vec![1]]);
            }
            let root = ed25519_sqrt(&(u_div_v * 2u32 % &p))
                .ok_or_else(|| hook_error(name, "2 is not a non-residue here, which cannot be"))?;
            let le32 = |x: &BigUint| {
                let mut b = x.to_bytes_le();
                b.resize(32, 0);
                b
            };
            Ok(vec![vec![0], le32(&v_inv), le32(&root)])
        }
        _ => Err(bad(format!("WRITE to fd {fd}, which is not an SP1 hook"))),
    }
}

/// The ecrecover hook (fd 15): `curve_id | r_is_y_odd << 7`, r, alpha =
/// r^3 + a r + b. Returns [1], y (with the asked parity), r^-1 mod n, or
/// [0] and the root of 3·alpha when alpha is not a square.
fn ecrecover(buf: &[u8]) -> Result<Vec<Vec<u8>>, Trap> {
    let name = "ecrecover";
    if buf.len() != 65 {
        return Err(hook_error(name, format!("{} bytes; it takes 65", buf.len())));
    }
    let (curve, order) = match buf[0] & 0x7f {
        1 => (
            Curve::Secp256k1,
            hex_modulus("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
        ),
        2 => (
            Curve::Secp256r1,
            hex_modulus("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
        ),
        id => {
            return Err(hook_error(
                name,
                format!("curve id {id}; 1 is secp256k1, 2 secp256r1"),
            ))
        }
    };
    let odd = buf[0] & 0x80 != 0;
    let p = curve.modulus();
    let r = BigUint::from_bytes_be(&buf[1..33]);
    let alpha = BigUint::from_bytes_be(&buf[33..65]);
    if r >= p || alpha >= p || alpha.is_zero() {
        return Err(hook_error(
            name,
            "r or alpha is not a canonical non-zero field element",
        ));
    }
    let exp = (&p + 1u32) / 4u32;
    let root = alpha.modpow(&exp, &p);
    if &root * &root % &p == alpha {
        if r >= order || r.is_zero() {
            return Err(hook_error(name, "r is not a non-zero scalar"));
        }
        let y = if (root.bit(0)) == odd {
            root
        } else {
            (&p - &root) % &p
        };
        let r_inv = inverse(&r, &order);
        Ok(vec![vec![1], pad_be(&y, 32), pad_be(&r_inv, 32)])
    } else {
        let qr = BigUint::from(3u32) * &alpha % &p;
        Ok(vec![vec![0], pad_be(&qr.modpow(&exp, &p), 32)])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn generator(curve: Curve) -> (BigUint, BigUint) {
        let (x, y) = match curve {
            Curve::Secp256k1 => (
                "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
                "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8",
            ),
            Curve::Secp256r1 => (
                "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
                "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
            ),
            Curve::Bn254 => ("1", "2"),
            Curve::Bls12381 => (
                "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
                "08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1",
            ),
        };
        (hex_modulus(x), hex_modulus(y))
    }

    fn on_curve(curve: Curve, (x, y): &(BigUint, BigUint)) -> bool {
        let p = curve.modulus();
        let b = match curve {
            Curve::Secp256k1 => BigUint::from(7u32),
            Curve::Secp256r1 => {
                hex_modulus("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
            }
            Curve::Bn254 => BigUint::from(3u32),
            Curve::Bls12381 => BigUint::from(4u32),
        };
        (y * y) % &p == (x * x * x + curve.a() * x + b) % &p
    }

    /// 2G by DOUBLE equals G + G computed another way (G + (G + G) - G is
    /// not available without negation, so: 3G = 2G + G lies on the curve,
    /// and DOUBLE(2G) = 2G + 2G's chord through 3G: 4G = 3G + G).
    #[test]
    fn point_arithmetic_stays_on_every_curve_and_agrees() {
        for curve in [Curve::Secp256k1, Curve::Secp256r1, Curve::Bn254, Curve::Bls12381] {
            let g = generator(curve);
            assert!(on_curve(curve, &g), "{}", curve.name());
            let g2 = double_point(curve, &g).unwrap();
            assert!(on_curve(curve, &g2), "{}", curve.name());
            let p = curve.modulus();
            let add = |a: &(BigUint, BigUint), b: &(BigUint, BigUint)| {
                let slope = sub_mod(&b.1, &a.1, &p) * inverse(&sub_mod(&b.0, &a.0, &p), &p) % &p;
                let x3 = sub_mod(&sub_mod(&(&slope * &slope % &p), &a.0, &p), &b.0, &p);
                let y3 = sub_mod(&(&slope * sub_mod(&a.0, &x3, &p) % &p), &a.1, &p);
                (x3, y3)
            };
            let g3 = add(&g2, &g);
            let g4a = add(&g3, &g);
            let g4b = double_point(curve, &g2).unwrap();
            assert!(on_curve(curve, &g3));
            assert_eq!(g4a, g4b, "{}", curve.name());
        }
    }

    /// secp256k1: 2G's published x coordinate.
    #[test]
    fn secp256k1_double_of_g_is_the_published_2g() {
        let g2 = double_point(Curve::Secp256k1, &generator(Curve::Secp256k1)).unwrap();
        assert_eq!(
            g2.0,
            hex_modulus("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
        );
    }

    #[test]
    fn square_roots_follow_the_hook_contract() {
        // BN254's p = 3 mod 4; a p = 1 mod 4 prime (13, non-residue 2)
        // takes Tonelli-Shanks.
        let p = BigUint::from(13u32);
        let root = sqrt_mod(&BigUint::from(10u32), &p, &BigUint::from(2u32)).unwrap();
        assert_eq!(&root * &root % &p, BigUint::from(10u32));
        assert_eq!(sqrt_mod(&BigUint::from(5u32), &p, &BigUint::from(2u32)), None);

        let mut buf = 1u32.to_be_bytes().to_vec();
        buf.extend([5u8, 13, 2]);
        let out = hook(20, &buf).unwrap();
        assert_eq!(out[0], vec![0]);
        let r = BigUint::from_bytes_be(&out[1]);
        assert_eq!(&r * &r % &p, BigUint::from(10u32), "the root of nqr * x");

        let mut buf = 1u32.to_be_bytes().to_vec();
        buf.extend([3u8, 13]);
        assert_eq!(hook(21, &buf).unwrap(), vec![vec![9]], "3 * 9 = 27 = 1 mod 13");
    }

    /// The edwards25519 base point: decompressing its y gives its x, and
    /// B + B lies on the curve -x^2 + y^2 = 1 + d x^2 y^2.
    #[test]
    fn ed25519_decompress_and_add_follow_the_curve() {
        let p = ed25519_modulus();
        let bx = BigUint::parse_bytes(
            b"15112221349535400772501151409588531511454012693041857206046113283949847762202",
            10,
        )
        .unwrap();
        let by = BigUint::parse_bytes(
            b"46316835694926478169428394003475163141307993866256225615783033603165251855960",
            10,
        )
        .unwrap();
        let yy = &by * &by % &p;
        let x =
            ed25519_sqrt(&((&yy + &p - 1u32) % &p * inverse(&((&yy * ed25519_d() + 1u32) % &p), &p) % &p))
                .unwrap();
        assert!(x == bx || x == &p - &bx);
        let on_curve = |x: &BigUint, y: &BigUint| {
            let (xx, yy) = (x * x % &p, y * y % &p);
            (&yy + &p - &xx) % &p == (BigUint::one() + ed25519_d() * &xx % &p * &yy) % &p
        };
        assert!(on_curve(&bx, &by));
        let dxy = ed25519_d() * (&bx * &by * &bx * &by % &p) % &p;
        let x2 = (&bx * &by * 2u32) % &p * inverse(&((BigUint::one() + &dxy) % &p), &p) % &p;
        let y2 = (&by * &by + &bx * &bx) % &p * inverse(&((BigUint::one() + &p - &dxy) % &p), &p) % &p;
        assert!(on_curve(&x2, &y2));
    }

    #[test]
    fn ecrecover_gives_y_of_the_asked_parity_and_r_inverse() {
        let (gx, gy) = generator(Curve::Secp256k1);
        let p = Curve::Secp256k1.modulus();
        let alpha = (&gx * &gx * &gx + 7u32) % &p;
        for odd in [false, true] {
            let mut buf = vec![1 | (u8::from(odd) << 7)];
            buf.extend(pad_be(&gx, 32));
            buf.extend(pad_be(&alpha, 32));
            let out = hook(15, &buf).unwrap();
            assert_eq!(out[0], vec![1]);
            let y = BigUint::from_bytes_be(&out[1]);
            assert_eq!(y.bit(0), odd);
            assert!(y == gy || y == &p - &gy);
        }
    }
}
