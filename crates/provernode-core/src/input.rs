//! A guest's input as one byte string, whatever the SDK made of it.
//!
//! A task carries its input as bytes, and the proof envelope commits to
//! their SHA-256. RISC Zero's `ExecutorEnv::write` appends to one stream, so
//! its input is those bytes. SP1's `SP1Stdin` is a list of items, one per
//! `write`/`write_slice`/`write_vec` on the host and one per
//! `sp1_zkvm::io::read*` in the guest, so an SP1 input is a list.
//!
//! The list is kept in the task's bytes with an encoding that is canonical
//! (one list, one byte string) and leaves the common case as it always was:
//! - no item: no bytes;
//! - one item: the item itself, unless it is empty or starts with
//!   [`ITEMS_MAGIC`];
//! - anything else: [`ITEMS_MAGIC`] followed by the items as bincode 1.x
//!   writes a `Vec<Vec<u8>>` (the `buffer` of an `SP1Stdin`).

/// Marks an input holding several SP1 items (or one that could be taken for
/// something else).
pub const ITEMS_MAGIC: &[u8; 16] = b"provernode-items";

/// Most items one input may hold.
pub const MAX_ITEMS: usize = 1 << 16;

/// Why input bytes are not a valid input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "the input starts with the {} marker but its item list is malformed: {reason}",
        String::from_utf8_lossy(ITEMS_MAGIC)
    )]
    MalformedItems { reason: String },
    #[error("the SP1Stdin file is malformed: {reason}; save it with `bincode::serialize(&stdin)` (bincode 1.x) from sp1-sdk 6")]
    MalformedStdin { reason: String },
    #[error("the SP1Stdin holds {count} proof(s) for the guest to verify; provernode does not yet take proofs as input (aggregation is a separate feature), so give the items alone")]
    StdinHasProofs { count: u64 },
    #[error("the input holds {count} items; at most {MAX_ITEMS} are accepted")]
    TooManyItems { count: u64 },
}

/// Encodes SP1 stdin items as one canonical byte string.
pub fn encode_items(items: &[Vec<u8>]) -> Vec<u8> {
    match items {
        [] => Vec::new(),
        [one] if !one.is_empty() && !one.starts_with(ITEMS_MAGIC) => one.clone(),
        many => {
            let mut out = ITEMS_MAGIC.to_vec();
            out.extend_from_slice(&(many.len() as u64).to_le_bytes());
            for item in many {
                out.extend_from_slice(&(item.len() as u64).to_le_bytes());
                out.extend_from_slice(item);
            }
            out
        }
    }
}

/// The SP1 stdin items an input's bytes stand for.
pub fn decode_items(bytes: &[u8]) -> Result<Vec<Vec<u8>>, InputError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = bytes.strip_prefix(ITEMS_MAGIC.as_slice()) else {
        return Ok(vec![bytes.to_vec()]);
    };
    let mut reader = Reader { bytes: rest };
    let items = reader
        .items()
        .map_err(|reason| InputError::MalformedItems { reason })?;
    if !reader.bytes.is_empty() {
        return Err(InputError::MalformedItems {
            reason: format!("{} bytes follow the last item", reader.bytes.len()),
        });
    }
    let canonical = encode_items(&items);
    if canonical != bytes {
        return Err(InputError::MalformedItems {
            reason: "a list of no items or of one plain item is written without the marker".into(),
        });
    }
    Ok(items)
}

/// Reads an `SP1Stdin` as sp1-sdk 6 serialises it with bincode 1.x
/// (`buffer: Vec<Vec<u8>>`, `ptr: usize`, `proofs: Vec<..>`) and returns its
/// items. The executor reads the whole buffer whatever `ptr` says, and so do
/// we. Proofs are refused with [`InputError::StdinHasProofs`].
pub fn parse_sp1_stdin(bytes: &[u8]) -> Result<Vec<Vec<u8>>, InputError> {
    let malformed = |reason: String| InputError::MalformedStdin { reason };
    let mut reader = Reader { bytes };
    let items = reader.items().map_err(malformed)?;
    let _ptr = reader.u64("ptr").map_err(malformed)?;
    let proofs = reader.u64("the proof count").map_err(malformed)?;
    if proofs > 0 {
        return Err(InputError::StdinHasProofs { count: proofs });
    }
    if !reader.bytes.is_empty() {
        return Err(malformed(format!(
            "{} bytes follow the empty proof list",
            reader.bytes.len()
        )));
    }
    Ok(items)
}

/// Bincode 1.x fixed-width reading, bounded by the bytes actually present.
/// By hand because bincode cannot skip the proofs without their types (they
/// live in SP1's prover crates), and a length prefix must never allocate
/// more than the bytes present.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| format!("it ends before {what}"))?;
        self.bytes = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn items(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let count = self.u64("the item count")?;
        if count > MAX_ITEMS as u64 {
            return Err(format!(
                "it claims {count} items; at most {MAX_ITEMS} are accepted"
            ));
        }
        let mut items = Vec::with_capacity(count as usize);
        for i in 0..count {
            let len = self.u64(&format!("the length of item {i}"))?;
            if len > self.bytes.len() as u64 {
                return Err(format!(
                    "item {i} claims {len} bytes but only {} remain",
                    self.bytes.len()
                ));
            }
            let (item, rest) = self.bytes.split_at(len as usize);
            items.push(item.to_vec());
            self.bytes = rest;
        }
        Ok(items)
    }
}

/// A task's input bytes from items as a host wrote them: SP1 keeps them
/// apart ([`encode_items`]); RISC Zero's host writes append to one stream,
/// so they are concatenated.
pub fn from_items(abi: crate::Abi, items: &[Vec<u8>]) -> Vec<u8> {
    match abi {
        crate::Abi::Sp1 => encode_items(items),
        crate::Abi::Risc0 => items.concat(),
    }
}

/// Checks that input bytes mean something for `abi` (SP1: a valid item
/// list); what a node runs before it accepts a task.
pub fn check(abi: crate::Abi, bytes: &[u8]) -> Result<(), InputError> {
    match abi {
        crate::Abi::Sp1 => decode_items(bytes).map(|_| ()),
        crate::Abi::Risc0 => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_list_round_trips_and_one_plain_item_stays_as_it_was() {
        let lists: Vec<Vec<Vec<u8>>> = vec![
            vec![],
            vec![vec![]],
            vec![b"abc".to_vec()],
            vec![b"abc".to_vec(), vec![]],
            vec![vec![1, 2], vec![3], vec![4, 5, 6]],
            vec![ITEMS_MAGIC.to_vec()],
            vec![[ITEMS_MAGIC.as_slice(), b"x"].concat()],
        ];
        for items in lists {
            let bytes = encode_items(&items);
            assert_eq!(decode_items(&bytes).unwrap(), items, "{bytes:?}");
        }
        assert_eq!(encode_items(&[b"abc".to_vec()]), b"abc");
        assert_eq!(decode_items(b"abc").unwrap(), vec![b"abc".to_vec()]);
        assert!(encode_items(&[]).is_empty());
    }

    #[test]
    fn a_non_canonical_or_truncated_list_is_refused() {
        // One plain item written with the marker.
        let mut bytes = ITEMS_MAGIC.to_vec();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(matches!(
            decode_items(&bytes),
            Err(InputError::MalformedItems { .. })
        ));
        // A length past the end.
        let mut bytes = encode_items(&[vec![1], vec![2]]);
        bytes.truncate(bytes.len() - 1);
        let err = decode_items(&bytes).unwrap_err().to_string();
        assert!(err.contains("claims 1 bytes but only 0 remain"), "{err}");
        // An absurd count allocates nothing.
        let mut bytes = ITEMS_MAGIC.to_vec();
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_items(&bytes).unwrap_err().to_string().contains("at most"));
    }

    /// The committed stdin of sp1-cluster's fibonacci test program
    /// (`bin/test-cluster/programs/fibonacci.stdin.zst`, decompressed): one
    /// item, `write(&1000u32)`.
    #[test]
    fn reads_an_sp1_stdin_as_the_sdk_writes_it() {
        let stdin =
            hex::decode("01000000000000000400000000000000e803000000000000000000000000000000000000").unwrap();
        assert_eq!(
            parse_sp1_stdin(&stdin).unwrap(),
            vec![1000u32.to_le_bytes().to_vec()]
        );
        let mut with_proof = stdin.clone();
        with_proof[28] = 1;
        assert_eq!(
            parse_sp1_stdin(&with_proof),
            Err(InputError::StdinHasProofs { count: 1 })
        );
        assert!(matches!(
            parse_sp1_stdin(&stdin[..20]),
            Err(InputError::MalformedStdin { .. })
        ));
    }
}
