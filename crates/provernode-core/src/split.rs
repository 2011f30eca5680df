//! Splitting one long proof into parts any agent can prove (issue 22).
//!
//! A task whose execution is longer than one segment can be proved as a
//! tree: one attempt executes the program and reports a [`SplitPlan`]
//! (how many segments of `2^po2` cycles, the public output); the node then
//! queues one part per segment and, as adjacent parts succeed, one join
//! part over each pair of adjacent ranges; the join that covers every
//! segment (the *final* join) returns the parent's own proof envelope,
//! the one an unsplit proof would have made.
//!
//! Three byte formats meet here:
//!
//! - **the plan** ([`SplitPlan`]): the public output of an envelope of kind
//!   [`PLAN_KIND`], which an agent reports for the parent instead of a
//!   proof;
//! - **a part's input** ([`PartInput`]): what the node stores for each part
//!   task. A segment carries the parent's input (the agent re-executes up
//!   to the segment: nothing but the index travels besides what the parent
//!   already had); a join carries the two adjacent parts' envelopes and,
//!   for the final join, the public output the plan recorded;
//! - **a part's claim** ([`PartClaim`]): the public output of a segment or
//!   join envelope: the range it covers and the backend's digest of what
//!   it proves (RISC Zero: the `ReceiptClaim` digest of the lifted range).
//!
//! Segments are numbered from 0; a part covers `lo..hi`.

use crate::{Digest, ProofEnvelope};

/// The proof kind of the envelope that reports a split instead of a proof.
pub const PLAN_KIND: &str = "split-plan";
/// The proof kind of one segment, proved and lifted.
pub const SEGMENT_KIND: &str = "split-segment";
/// The proof kind of a join of two adjacent ranges.
pub const JOIN_KIND: &str = "split-join";

const PLAN_MAGIC: &[u8; 16] = b"pn-split-plan-1\n";
const PART_MAGIC: &[u8; 16] = b"pn-split-part-1\n";
const CLAIM_MAGIC: &[u8; 16] = b"pn-split-clm-1\n\0";

/// Most segments one task is split into: bounds the tasks a plan creates.
pub const MAX_SEGMENTS: u32 = 4096;
/// Segment sizes a plan may ask for (`2^po2` cycles). RISC Zero accepts 14
/// to 24 (the last one needing about 35 GiB to prove); trace any.
pub const SEGMENT_PO2_RANGE: std::ops::RangeInclusive<u32> = 10..=24;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the split plan is malformed: {0}")]
    MalformedPlan(String),
    #[error("the part input is malformed: {0}")]
    MalformedPart(String),
    #[error("the part claim is malformed: {0}")]
    MalformedClaim(String),
}

/// What executing the parent found: the public output of a [`PLAN_KIND`] envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    pub segments: u32,
    pub segment_po2: u32,
    /// The whole execution's cycles (what the parent's proof will say).
    pub cycles: u64,
    /// The whole execution's public output (the final join's journal).
    pub public_output: Vec<u8>,
}

impl SplitPlan {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PLAN_MAGIC.len() + 20 + self.public_output.len());
        out.extend_from_slice(PLAN_MAGIC);
        out.extend_from_slice(&self.segments.to_le_bytes());
        out.extend_from_slice(&self.segment_po2.to_le_bytes());
        out.extend_from_slice(&self.cycles.to_le_bytes());
        put_bytes(&mut out, &self.public_output);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SplitPlan, SplitError> {
        let bad = |r: &str| SplitError::MalformedPlan(r.to_owned());
        let mut r =
            Reader::new(bytes, PLAN_MAGIC).ok_or_else(|| bad("it does not start with the plan marker"))?;
        let segments = r.u32().ok_or_else(|| bad("truncated in the segment count"))?;
        let segment_po2 = r.u32().ok_or_else(|| bad("truncated in the segment size"))?;
        let cycles = r.u64().ok_or_else(|| bad("truncated in the cycle count"))?;
        let public_output = r.bytes().ok_or_else(|| bad("truncated in the public output"))?;
        if !r.done() {
            return Err(bad("bytes follow the public output"));
        }
        if !(2..=MAX_SEGMENTS).contains(&segments) {
            return Err(bad(&format!(
                "a plan has 2 to {MAX_SEGMENTS} segments, not {segments}"
            )));
        }
        if !SEGMENT_PO2_RANGE.contains(&segment_po2) {
            return Err(bad(&format!("segment size 2^{segment_po2} is out of range")));
        }
        Ok(SplitPlan {
            segments,
            segment_po2,
            cycles,
            public_output: public_output.to_vec(),
        })
    }

    /// Joins a balanced tree over the segments takes: one fewer than segments.
    pub fn joins(&self) -> u32 {
        self.segments - 1
    }
}

/// What one part proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartWork {
    /// Re-execute the parent's input up to segment `lo` and prove it.
    Segment { parent_input: Vec<u8> },
    /// Join two adjacent ranges, `lo..mid` and `mid..hi`, proved in these
    /// envelopes. `public_output` and `cycles` are the plan's, for the
    /// final join (the parent's proof names them).
    Join {
        left: Vec<u8>,
        right: Vec<u8>,
        public_output: Vec<u8>,
        cycles: u64,
    },
}

/// A part task's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInput {
    /// Segments in the plan.
    pub total: u32,
    pub segment_po2: u32,
    /// SHA-256 of the parent's input: what the final envelope names.
    pub parent_input_digest: Digest,
    pub lo: u32,
    pub hi: u32,
    pub work: PartWork,
}

impl PartInput {
    /// Whether `bytes` are a part's input (by their magic).
    pub fn is(bytes: &[u8]) -> bool {
        bytes.starts_with(PART_MAGIC)
    }

    /// Whether this part covers every segment: it makes the parent's proof.
    pub fn is_final(&self) -> bool {
        self.lo == 0 && self.hi == self.total
    }

    pub fn segment(plan: &SplitPlan, parent_input: &[u8], index: u32) -> PartInput {
        PartInput {
            total: plan.segments,
            segment_po2: plan.segment_po2,
            parent_input_digest: crate::sha256(parent_input),
            lo: index,
            hi: index + 1,
            work: PartWork::Segment {
                parent_input: parent_input.to_vec(),
            },
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(PART_MAGIC);
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&self.segment_po2.to_le_bytes());
        out.extend_from_slice(&self.parent_input_digest.0);
        out.extend_from_slice(&self.lo.to_le_bytes());
        out.extend_from_slice(&self.hi.to_le_bytes());
        match &self.work {
            PartWork::Segment { parent_input } => {
                out.push(0);
                put_bytes(&mut out, parent_input);
            }
            PartWork::Join {
                left,
                right,
                public_output,
                cycles,
            } => {
                out.push(1);
                put_bytes(&mut out, left);
                put_bytes(&mut out, right);
                put_bytes(&mut out, public_output);
                out.extend_from_slice(&cycles.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<PartInput, SplitError> {
        let bad = |r: &str| SplitError::MalformedPart(r.to_owned());
        let mut r =
            Reader::new(bytes, PART_MAGIC).ok_or_else(|| bad("it does not start with the part marker"))?;
        let total = r.u32().ok_or_else(|| bad("truncated in the segment count"))?;
        let segment_po2 = r.u32().ok_or_else(|| bad("truncated in the segment size"))?;
        let digest: [u8; 32] = r
            .take(32)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| bad("truncated in the parent's input digest"))?;
        let lo = r.u32().ok_or_else(|| bad("truncated in the range"))?;
        let hi = r.u32().ok_or_else(|| bad("truncated in the range"))?;
        let work = match r.take(1).map(|t| t[0]) {
            Some(0) => PartWork::Segment {
                parent_input: r
                    .bytes()
                    .ok_or_else(|| bad("truncated in the parent's input"))?
                    .to_vec(),
            },
            Some(1) => PartWork::Join {
                left: r
                    .bytes()
                    .ok_or_else(|| bad("truncated in the left part"))?
                    .to_vec(),
                right: r
                    .bytes()
                    .ok_or_else(|| bad("truncated in the right part"))?
                    .to_vec(),
                public_output: r
                    .bytes()
                    .ok_or_else(|| bad("truncated in the public output"))?
                    .to_vec(),
                cycles: r.u64().ok_or_else(|| bad("truncated in the cycle count"))?,
            },
            Some(other) => return Err(bad(&format!("unknown part kind {other}"))),
            None => return Err(bad("truncated in the part kind")),
        };
        if !r.done() {
            return Err(bad("bytes follow the part"));
        }
        if !(2..=MAX_SEGMENTS).contains(&total) || lo >= hi || hi > total {
            return Err(bad(&format!(
                "range {lo}..{hi} of {total} segments is not a part"
            )));
        }
        if matches!(work, PartWork::Segment { .. }) && hi != lo + 1 {
            return Err(bad(&format!("a segment part covers one segment, not {lo}..{hi}")));
        }
        if !SEGMENT_PO2_RANGE.contains(&segment_po2) {
            return Err(bad(&format!("segment size 2^{segment_po2} is out of range")));
        }
        let part = PartInput {
            total,
            segment_po2,
            parent_input_digest: Digest(digest),
            lo,
            hi,
            work,
        };
        if let PartWork::Segment { parent_input } = &part.work {
            if crate::sha256(parent_input) != part.parent_input_digest {
                return Err(bad(
                    "the parent's input does not match its digest (damaged in storage?)",
                ));
            }
        }
        Ok(part)
    }

    /// The two parts a join covers, decoded and checked to be adjacent
    /// parts of the same plan.
    pub fn join_parts(&self) -> Result<(ProofEnvelope, PartClaim, ProofEnvelope, PartClaim), SplitError> {
        let PartWork::Join { left, right, .. } = &self.work else {
            return Err(SplitError::MalformedPart("not a join".into()));
        };
        let side = |bytes: &[u8], which: &str| -> Result<(ProofEnvelope, PartClaim), SplitError> {
            let envelope = ProofEnvelope::decode(bytes).map_err(|e| {
                SplitError::MalformedPart(format!("the {which} part's envelope is unreadable: {e}"))
            })?;
            let claim = PartClaim::decode(&envelope.public_output)?;
            Ok((envelope, claim))
        };
        let (left_envelope, left_claim) = side(left, "left")?;
        let (right_envelope, right_claim) = side(right, "right")?;
        if left_claim.lo != self.lo
            || left_claim.hi != right_claim.lo
            || right_claim.hi != self.hi
            || left_claim.total != self.total
            || right_claim.total != self.total
        {
            return Err(SplitError::MalformedPart(format!(
                "parts {}..{} and {}..{} do not make {}..{} of {} segments",
                left_claim.lo, left_claim.hi, right_claim.lo, right_claim.hi, self.lo, self.hi, self.total
            )));
        }
        Ok((left_envelope, left_claim, right_envelope, right_claim))
    }
}

/// What a segment or join envelope attests: its public output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartClaim {
    pub lo: u32,
    pub hi: u32,
    pub total: u32,
    /// The backend's digest of what the part proves.
    pub digest: [u8; 32],
}

impl PartClaim {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CLAIM_MAGIC.len() + 12 + 32);
        out.extend_from_slice(CLAIM_MAGIC);
        out.extend_from_slice(&self.lo.to_le_bytes());
        out.extend_from_slice(&self.hi.to_le_bytes());
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<PartClaim, SplitError> {
        let bad = |r: &str| SplitError::MalformedClaim(r.to_owned());
        let mut r =
            Reader::new(bytes, CLAIM_MAGIC).ok_or_else(|| bad("it does not start with the claim marker"))?;
        let lo = r.u32().ok_or_else(|| bad("truncated"))?;
        let hi = r.u32().ok_or_else(|| bad("truncated"))?;
        let total = r.u32().ok_or_else(|| bad("truncated"))?;
        let digest = r
            .take(32)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| bad("truncated"))?;
        if !r.done() || lo >= hi || hi > total {
            return Err(bad("not a part's range"));
        }
        Ok(PartClaim {
            lo,
            hi,
            total,
            digest,
        })
    }
}

/// Segments of `2^po2` cycles an execution of `cycles` needs.
pub fn segments_for(cycles: u64, segment_po2: u32) -> u64 {
    cycles.div_ceil(1u64 << segment_po2).max(1)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], magic: &[u8]) -> Option<Reader<'a>> {
        bytes.strip_prefix(magic).map(|rest| Reader { rest })
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u64()?).ok()?;
        self.take(len)
    }
    fn done(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SplitPlan {
        SplitPlan {
            segments: 5,
            segment_po2: 16,
            cycles: 300_000,
            public_output: b"out".to_vec(),
        }
    }

    #[test]
    fn plans_parts_and_claims_round_trip() {
        let p = plan();
        assert_eq!(SplitPlan::decode(&p.encode()).unwrap(), p);
        let part = PartInput::segment(&p, b"input", 3);
        assert!(PartInput::is(&part.encode()));
        assert_eq!(PartInput::decode(&part.encode()).unwrap(), part);
        assert!(!part.is_final());
        let claim = PartClaim {
            lo: 0,
            hi: 2,
            total: 5,
            digest: [7; 32],
        };
        assert_eq!(PartClaim::decode(&claim.encode()).unwrap(), claim);
    }

    #[test]
    fn malformed_bytes_are_refused_with_the_reason() {
        let p = plan();
        let mut bytes = p.encode();
        bytes.push(0);
        assert!(SplitPlan::decode(&bytes)
            .unwrap_err()
            .to_string()
            .contains("follow"));
        let one = SplitPlan {
            segments: 1,
            ..p.clone()
        };
        assert!(SplitPlan::decode(&one.encode())
            .unwrap_err()
            .to_string()
            .contains("2 to"));
        let mut part = PartInput::segment(&p, b"input", 3).encode();
        let last = part.len() - 1;
        part[last] ^= 1;
        assert!(PartInput::decode(&part)
            .unwrap_err()
            .to_string()
            .contains("digest"));
        assert!(PartInput::decode(&part[..20]).is_err());
        let out_of_range = PartInput {
            lo: 5,
            hi: 6,
            ..PartInput::segment(&p, b"i", 0)
        };
        assert!(PartInput::decode(&out_of_range.encode())
            .unwrap_err()
            .to_string()
            .contains("range"));
    }

    #[test]
    fn segment_counts_round_up() {
        assert_eq!(segments_for(0, 16), 1);
        assert_eq!(segments_for(65_536, 16), 1);
        assert_eq!(segments_for(65_537, 16), 2);
    }
}
