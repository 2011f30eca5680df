//! Aggregation: one proof that verifies many.
//!
//! Three byte formats meet here:
//!
//! - **The aggregate task's input** ([`AggregateInput`]): [`AGGREGATE_MAGIC`],
//!   u32 count, then each inner proof envelope as u64 length + bytes, in the
//!   order the guest verifies them. The node assembles it from the stored
//!   proofs of the tasks an aggregate depends on; a backend turns it into
//!   the guest's input (the claims) and its own side channel (RISC Zero
//!   assumptions, SP1 `write_proof`, trace's checked envelopes).
//! - **The guest's input** ([`encode_claims`]): u32 N, then per claim the
//!   32-byte program key as the zkVM knows it (RISC Zero image id, SP1 vk
//!   digest as 8 canonical KoalaBear words) and u32 length + the claim's
//!   public output.
//! - **The guest's public output** ([`AggregateOutput`]): u32 N, the 32-byte
//!   Merkle root, then per claim the program key and SHA-256 of its public
//!   output. The list makes the proof say, alone, exactly which claims it
//!   covers; the root lets a consumer that keeps 36 bytes check one claim
//!   with a path ([`inclusion_path`], [`verify_inclusion`]).
//!
//! The tree: leaf = SHA-256(0x00 ‖ key ‖ SHA-256(output)), node =
//! SHA-256(0x01 ‖ left ‖ right), pairs taken left to right on each level and
//! an odd last node carried up unchanged. The tags keep a leaf from passing
//! for a node. The C guest (`guests/programs/aggregate.c`) builds the same
//! tree; the known-answer tests compare both.

use crate::{sha256, ProofEnvelope};

/// Marks an aggregate task's input.
pub const AGGREGATE_MAGIC: &[u8; 16] = b"pn-aggregate-v1\n";

/// Most claims one aggregate covers: bounds the guest's work and the
/// input a node assembles.
pub const MAX_CLAIMS: usize = 1024;

/// Why aggregate bytes are malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    #[error("the aggregate input is malformed: {0}")]
    MalformedInput(String),
    #[error("claim {index}: {reason}")]
    Claim { index: usize, reason: String },
    #[error("an aggregate covers 1 to {MAX_CLAIMS} claims, not {0}")]
    Count(usize),
    #[error("the public output is not an aggregate's: {0}")]
    MalformedOutput(String),
}

/// What an aggregate proves: the inner proofs, in the order verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateInput {
    pub inner: Vec<ProofEnvelope>,
}

impl AggregateInput {
    /// Whether `bytes` are an aggregate input (by their magic).
    pub fn is(bytes: &[u8]) -> bool {
        bytes.starts_with(AGGREGATE_MAGIC)
    }

    pub fn encode(&self) -> Result<Vec<u8>, AggregateError> {
        let mut encoded = Vec::with_capacity(self.inner.len());
        for (index, envelope) in self.inner.iter().enumerate() {
            encoded.push(envelope.encode().map_err(|e| AggregateError::Claim {
                index,
                reason: e.to_string(),
            })?);
        }
        Self::encode_raw(&encoded)
    }

    /// Encodes already encoded envelopes (a store holds them as bytes).
    pub fn encode_raw(envelopes: &[Vec<u8>]) -> Result<Vec<u8>, AggregateError> {
        if envelopes.is_empty() || envelopes.len() > MAX_CLAIMS {
            return Err(AggregateError::Count(envelopes.len()));
        }
        let total: usize = envelopes.iter().map(|e| e.len() + 8).sum();
        let mut out = Vec::with_capacity(AGGREGATE_MAGIC.len() + 4 + total);
        out.extend_from_slice(AGGREGATE_MAGIC);
        out.extend_from_slice(&(envelopes.len() as u32).to_le_bytes());
        for envelope in envelopes {
            out.extend_from_slice(&(envelope.len() as u64).to_le_bytes());
            out.extend_from_slice(envelope);
        }
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<AggregateInput, AggregateError> {
        let bad = |reason: &str| AggregateError::MalformedInput(reason.to_owned());
        let rest = bytes
            .strip_prefix(&AGGREGATE_MAGIC[..])
            .ok_or_else(|| bad("it does not start with the aggregate marker"))?;
        let (count, mut rest) = split_u32(rest).ok_or_else(|| bad("truncated in the count"))?;
        let count = count as usize;
        if count == 0 || count > MAX_CLAIMS {
            return Err(AggregateError::Count(count));
        }
        let mut inner = Vec::with_capacity(count);
        for index in 0..count {
            let (len, tail) = split_u64(rest).ok_or_else(|| AggregateError::Claim {
                index,
                reason: "the aggregate input is truncated in this proof's length".into(),
            })?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= tail.len())
                .ok_or_else(|| AggregateError::Claim {
                    index,
                    reason: format!("the aggregate input is truncated in this proof ({len} bytes declared)"),
                })?;
            let envelope = ProofEnvelope::decode(&tail[..len]).map_err(|e| AggregateError::Claim {
                index,
                reason: format!("its proof envelope is unreadable: {e}"),
            })?;
            inner.push(envelope);
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(bad(&format!("{} bytes follow the last proof", rest.len())));
        }
        Ok(AggregateInput { inner })
    }
}

/// One claim as the guest receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The program as the zkVM knows it (RISC Zero image id, SP1 vk digest).
    pub program_key: [u8; 32],
    pub public_output: Vec<u8>,
}

impl Claim {
    pub fn digest(&self) -> ClaimDigest {
        ClaimDigest {
            program_key: self.program_key,
            output_digest: sha256(&self.public_output).0,
        }
    }
}

/// One claim as the aggregate commits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimDigest {
    pub program_key: [u8; 32],
    pub output_digest: [u8; 32],
}

impl ClaimDigest {
    pub fn leaf(&self) -> [u8; 32] {
        let mut preimage = [0u8; 65];
        preimage[1..33].copy_from_slice(&self.program_key);
        preimage[33..].copy_from_slice(&self.output_digest);
        sha256(&preimage).0
    }
}

/// The guest's input for `claims`.
pub fn encode_claims(claims: &[Claim]) -> Vec<u8> {
    let total: usize = claims.iter().map(|c| 36 + c.public_output.len()).sum();
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(claims.len() as u32).to_le_bytes());
    for claim in claims {
        out.extend_from_slice(&claim.program_key);
        out.extend_from_slice(&(claim.public_output.len() as u32).to_le_bytes());
        out.extend_from_slice(&claim.public_output);
    }
    out
}

/// The claims in a guest input made by [`encode_claims`].
pub fn decode_claims(bytes: &[u8]) -> Result<Vec<Claim>, AggregateError> {
    let bad = |reason: String| AggregateError::MalformedInput(reason);
    let (count, mut rest) = split_u32(bytes).ok_or_else(|| bad("truncated in the count".into()))?;
    let count = count as usize;
    if count == 0 || count > MAX_CLAIMS {
        return Err(AggregateError::Count(count));
    }
    let mut claims = Vec::with_capacity(count);
    for index in 0..count {
        let truncated = || AggregateError::Claim {
            index,
            reason: "the claims are truncated here".into(),
        };
        let key = rest.get(..32).ok_or_else(truncated)?;
        let (len, tail) = split_u32(&rest[32..]).ok_or_else(truncated)?;
        let output = tail.get(..len as usize).ok_or_else(truncated)?;
        let mut program_key = [0u8; 32];
        program_key.copy_from_slice(key);
        claims.push(Claim {
            program_key,
            public_output: output.to_vec(),
        });
        rest = &tail[len as usize..];
    }
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes follow the last claim", rest.len())));
    }
    Ok(claims)
}

/// An aggregate's public output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateOutput {
    pub root: [u8; 32],
    pub claims: Vec<ClaimDigest>,
}

impl AggregateOutput {
    pub fn of(claims: &[Claim]) -> AggregateOutput {
        Self::of_digests(claims.iter().map(Claim::digest).collect())
    }

    /// The output for claims already digested (as `claim_of` gives them).
    pub fn of_digests(claims: Vec<ClaimDigest>) -> AggregateOutput {
        AggregateOutput {
            root: merkle_root(&leaves(&claims)),
            claims,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + 64 * self.claims.len());
        out.extend_from_slice(&(self.claims.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.root);
        for claim in &self.claims {
            out.extend_from_slice(&claim.program_key);
            out.extend_from_slice(&claim.output_digest);
        }
        out
    }

    /// Reads an aggregate's public output and checks that its root is the
    /// root of its claims.
    pub fn decode(bytes: &[u8]) -> Result<AggregateOutput, AggregateError> {
        let bad = |reason: String| AggregateError::MalformedOutput(reason);
        let (count, rest) = split_u32(bytes).ok_or_else(|| bad("shorter than 4 bytes".into()))?;
        let count = count as usize;
        if count == 0 || count > MAX_CLAIMS {
            return Err(AggregateError::Count(count));
        }
        if rest.len() != 32 + 64 * count {
            return Err(bad(format!(
                "{} bytes after the count, an aggregate of {count} claims has {}",
                rest.len(),
                32 + 64 * count
            )));
        }
        let mut root = [0u8; 32];
        root.copy_from_slice(&rest[..32]);
        let claims: Vec<ClaimDigest> = rest[32..]
            .chunks_exact(64)
            .map(|c| {
                let mut claim = ClaimDigest {
                    program_key: [0; 32],
                    output_digest: [0; 32],
                };
                claim.program_key.copy_from_slice(&c[..32]);
                claim.output_digest.copy_from_slice(&c[32..]);
                claim
            })
            .collect();
        if merkle_root(&leaves(&claims)) != root {
            return Err(bad(
                "its Merkle root is not the root of the claims it lists".into()
            ));
        }
        Ok(AggregateOutput { root, claims })
    }

    /// The index of `claim` in this aggregate, if it covers it.
    pub fn position(&self, claim: &ClaimDigest) -> Option<usize> {
        self.claims.iter().position(|c| c == claim)
    }

    pub fn path(&self, index: usize) -> Option<Vec<[u8; 32]>> {
        inclusion_path(&leaves(&self.claims), index)
    }
}

pub fn leaves(claims: &[ClaimDigest]) -> Vec<[u8; 32]> {
    claims.iter().map(ClaimDigest::leaf).collect()
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut preimage = [0u8; 65];
    preimage[0] = 1;
    preimage[1..33].copy_from_slice(left);
    preimage[33..].copy_from_slice(right);
    sha256(&preimage).0
}

fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node(left, right),
            [odd] => *odd,
            _ => unreachable!("chunks(2) yields one or two"),
        })
        .collect()
}

/// The root over `leaves` (all zero for none).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or([0; 32])
}

/// The siblings from leaf `index` up to the root, skipping the levels where
/// the node is carried up alone. `None` when `index` is out of range.
pub fn inclusion_path(leaves: &[[u8; 32]], index: usize) -> Option<Vec<[u8; 32]>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut level = leaves.to_vec();
    let mut at = index;
    while level.len() > 1 {
        let sibling = at ^ 1;
        if let Some(s) = level.get(sibling) {
            path.push(*s);
        }
        level = next_level(&level);
        at /= 2;
    }
    Some(path)
}

/// Whether `leaf` is leaf `index` of a tree of `count` leaves with `root`,
/// by `path` (as [`inclusion_path`] makes it).
pub fn verify_inclusion(
    root: &[u8; 32],
    count: usize,
    index: usize,
    leaf: &[u8; 32],
    path: &[[u8; 32]],
) -> bool {
    if index >= count {
        return false;
    }
    let mut hash = *leaf;
    let mut at = index;
    let mut width = count;
    let mut siblings = path.iter();
    while width > 1 {
        let sibling = at ^ 1;
        if sibling < width {
            let Some(s) = siblings.next() else {
                return false;
            };
            hash = if at % 2 == 0 {
                node(&hash, s)
            } else {
                node(s, &hash)
            };
        }
        at /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none() && hash == *root
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let head = bytes.get(..4)?;
    Some((
        u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
        &bytes[4..],
    ))
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let head = bytes.get(..8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(head);
    Some((u64::from_le_bytes(word), &bytes[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(n: usize) -> Vec<Claim> {
        (0..n)
            .map(|i| Claim {
                program_key: [i as u8; 32],
                public_output: vec![i as u8; i],
            })
            .collect()
    }

    #[test]
    fn claims_round_trip_and_truncation_names_the_claim() {
        let c = claims(3);
        let bytes = encode_claims(&c);
        assert_eq!(decode_claims(&bytes).unwrap(), c);
        let err = decode_claims(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(
            err,
            AggregateError::Claim {
                index: 2,
                reason: "the claims are truncated here".into()
            }
        );
        assert_eq!(
            decode_claims(&0u32.to_le_bytes()).unwrap_err(),
            AggregateError::Count(0)
        );
    }

    #[test]
    fn every_leaf_of_every_tree_size_has_a_path_that_checks_and_only_there() {
        for n in 1..=17 {
            let out = AggregateOutput::of(&claims(n));
            let leaves = leaves(&out.claims);
            for (i, leaf) in leaves.iter().enumerate() {
                let path = inclusion_path(&leaves, i).unwrap();
                assert!(verify_inclusion(&out.root, n, i, leaf, &path), "n={n} i={i}");
                assert!(!verify_inclusion(&out.root, n, (i + 1) % n.max(2), leaf, &path) || n == 1);
                let mut wrong = *leaf;
                wrong[0] ^= 1;
                assert!(!verify_inclusion(&out.root, n, i, &wrong, &path));
            }
            assert_eq!(inclusion_path(&leaves, n), None);
        }
    }

    #[test]
    fn the_tree_has_the_documented_shape() {
        let out = AggregateOutput::of(&claims(3));
        let l = leaves(&out.claims);
        assert_eq!(out.root, node(&node(&l[0], &l[1]), &l[2]));
        assert_eq!(AggregateOutput::of(&claims(1)).root, l[0]);
    }

    #[test]
    fn the_output_round_trips_and_a_wrong_root_is_refused() {
        let out = AggregateOutput::of(&claims(5));
        let mut bytes = out.encode();
        assert_eq!(AggregateOutput::decode(&bytes).unwrap(), out);
        bytes[5] ^= 1;
        assert!(matches!(
            AggregateOutput::decode(&bytes),
            Err(AggregateError::MalformedOutput(_))
        ));
        assert!(AggregateOutput::decode(&bytes[..40]).is_err());
    }

    #[test]
    fn an_input_round_trips_and_a_bad_envelope_names_its_index() {
        let envelope = ProofEnvelope {
            backend: "trace".into(),
            backend_version: "1".into(),
            proof_kind: "execution-record".into(),
            abi: crate::Abi::Risc0,
            program_id: crate::ProgramId(crate::Digest([1; 32])),
            input_digest: crate::Digest([2; 32]),
            cycles: 3,
            public_output: b"out".to_vec(),
            proof: b"proof".to_vec(),
        };
        let input = AggregateInput {
            inner: vec![envelope.clone(), envelope],
        };
        let mut bytes = input.encode().unwrap();
        assert!(AggregateInput::is(&bytes));
        assert_eq!(AggregateInput::decode(&bytes).unwrap(), input);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = AggregateInput::decode(&bytes).unwrap_err();
        assert!(matches!(err, AggregateError::Claim { index: 1, .. }), "{err}");
        assert_eq!(
            AggregateInput::encode_raw(&[]).unwrap_err(),
            AggregateError::Count(0)
        );
    }
}
