//! Guest memory: a sparse, paged, bounded address space.
//!
//! Pages are allocated on first write (reads of untouched memory return
//! zero, as on the zkVMs) and counted against the memory limit. A two-level
//! table maps page numbers to pages, so lookups cost two indexings whatever
//! the size of the address space (2^32 for risc0, 2^37 for SP1).

use provernode_core::Fault;

pub const PAGE_BITS: u32 = 12;
pub const PAGE_SIZE: usize = 1 << PAGE_BITS;
const L2_BITS: u32 = 10;
const L2_LEN: usize = 1 << L2_BITS;

type Page = Box<[u8; PAGE_SIZE]>;

#[derive(Debug, PartialEq, Eq)]
pub enum MemError {
    Fault(Fault),
    Limit,
}

pub struct Memory {
    lo: u64,
    hi: u64,
    /// Page number >> L2_BITS -> second-level table of (page index + 1).
    table: Vec<Option<Box<[u32; L2_LEN]>>>,
    pages: Vec<Page>,
    max_pages: usize,
    /// While SP1 runs an unconstrained block: how to put memory back as it
    /// was when the block was entered.
    undo: Option<UndoLog>,
}

/// Copy-on-write record of an unconstrained block: the first write to a page
/// that existed at entry saves its old contents; pages created inside the
/// block are dropped on exit.
struct UndoLog {
    pages_at_entry: usize,
    saved: Vec<(usize, Page)>,
    is_saved: Vec<bool>,
    created: Vec<u64>,
}

impl Memory {
    /// Memory over `[lo, hi)` holding at most `max_bytes` of touched pages.
    pub fn new(lo: u64, hi: u64, max_bytes: u64) -> Memory {
        let l1_len = ((hi - 1) >> (PAGE_BITS + L2_BITS)) as usize + 1;
        Memory {
            lo,
            hi,
            table: (0..l1_len).map(|_| None).collect(),
            pages: Vec::new(),
            max_pages: usize::try_from(max_bytes / PAGE_SIZE as u64).unwrap_or(usize::MAX),
            undo: None,
        }
    }

    /// Starts recording writes so that [`Memory::rollback`] can undo them.
    pub fn checkpoint(&mut self) {
        self.undo = Some(UndoLog {
            pages_at_entry: self.pages.len(),
            saved: Vec::new(),
            is_saved: vec![false; self.pages.len()],
            created: Vec::new(),
        });
    }

    /// Puts memory back as it was at the last [`Memory::checkpoint`].
    pub fn rollback(&mut self) {
        let Some(undo) = self.undo.take() else { return };
        for (index, page) in undo.saved {
            self.pages[index] = page;
        }
        for page_number in undo.created {
            if let Some(l2) = self.table[(page_number >> L2_BITS) as usize].as_mut() {
                l2[(page_number as usize) & (L2_LEN - 1)] = 0;
            }
        }
        self.pages.truncate(undo.pages_at_entry);
    }

    pub fn bytes_in_use(&self) -> u64 {
        (self.pages.len() * PAGE_SIZE) as u64
    }

    #[inline(always)]
    fn page(&self, page_number: u64) -> Option<&Page> {
        let l2 = self.table[(page_number >> L2_BITS) as usize].as_ref()?;
        match l2[(page_number as usize) & (L2_LEN - 1)] {
            0 => None,
            i => Some(&self.pages[i as usize - 1]),
        }
    }

    #[inline(always)]
    fn page_mut(&mut self, page_number: u64) -> Result<&mut Page, MemError> {
        let l2 = self.table[(page_number >> L2_BITS) as usize].get_or_insert_with(|| Box::new([0; L2_LEN]));
        let slot = &mut l2[(page_number as usize) & (L2_LEN - 1)];
        if *slot == 0 {
            if self.pages.len() >= self.max_pages {
                return Err(MemError::Limit);
            }
            self.pages.push(Box::new([0; PAGE_SIZE]));
            *slot = self.pages.len() as u32;
            if let Some(undo) = self.undo.as_mut() {
                undo.created.push(page_number);
            }
        }
        let index = *slot as usize - 1;
        if let Some(undo) = self.undo.as_mut() {
            if index < undo.pages_at_entry && !undo.is_saved[index] {
                undo.is_saved[index] = true;
                undo.saved.push((index, self.pages[index].clone()));
            }
        }
        Ok(&mut self.pages[index])
    }

    #[inline(always)]
    fn check(&self, addr: u64, size: u32, write: bool) -> Result<(), MemError> {
        if addr & (u64::from(size) - 1) != 0 {
            return Err(MemError::Fault(Fault::Misaligned { addr, size, write }));
        }
        if addr < self.lo || addr >= self.hi {
            return Err(MemError::Fault(Fault::OutOfBounds { addr, size, write }));
        }
        Ok(())
    }

    /// Loads a naturally aligned little-endian value of `size` (1, 2, 4, 8) bytes.
    #[inline(always)]
    pub fn load(&self, addr: u64, size: u32) -> Result<u64, MemError> {
        self.check(addr, size, false)?;
        let Some(page) = self.page(addr >> PAGE_BITS) else {
            return Ok(0);
        };
        let off = (addr as usize) & (PAGE_SIZE - 1);
        Ok(match size {
            1 => u64::from(page[off]),
            2 => u64::from(u16::from_le_bytes([page[off], page[off + 1]])),
            4 => u64::from(u32::from_le_bytes([
                page[off],
                page[off + 1],
                page[off + 2],
                page[off + 3],
            ])),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&page[off..off + 8]);
                u64::from_le_bytes(b)
            }
        })
    }

    /// Stores the low `size` bytes of `value`, naturally aligned.
    #[inline(always)]
    pub fn store(&mut self, addr: u64, size: u32, value: u64) -> Result<(), MemError> {
        self.check(addr, size, true)?;
        let page = self.page_mut(addr >> PAGE_BITS)?;
        let off = (addr as usize) & (PAGE_SIZE - 1);
        let bytes = value.to_le_bytes();
        page[off..off + size as usize].copy_from_slice(&bytes[..size as usize]);
        Ok(())
    }

    /// Copies bytes in, with no alignment rule (loader and host writes).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), MemError> {
        self.check_range(addr, data.len() as u64, true)?;
        let mut done = 0usize;
        while done < data.len() {
            let a = addr + done as u64;
            let off = (a as usize) & (PAGE_SIZE - 1);
            let n = (PAGE_SIZE - off).min(data.len() - done);
            let page = self.page_mut(a >> PAGE_BITS)?;
            page[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies bytes out, with no alignment rule (host reads of guest buffers).
    pub fn read_bytes(&self, addr: u64, len: u64) -> Result<Vec<u8>, MemError> {
        self.check_range(addr, len, false)?;
        let len = usize::try_from(len).map_err(|_| MemError::Limit)?;
        let mut out = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let a = addr + done as u64;
            let off = (a as usize) & (PAGE_SIZE - 1);
            let n = (PAGE_SIZE - off).min(len - done);
            if let Some(page) = self.page(a >> PAGE_BITS) {
                out[done..done + n].copy_from_slice(&page[off..off + n]);
            }
            done += n;
        }
        Ok(out)
    }

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn read_c_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, MemError> {
        let mut out = Vec::new();
        for i in 0..max as u64 {
            let b = self.load(addr + i, 1)? as u8;
            if b == 0 {
                return Ok(out);
            }
            out.push(b);
        }
        Err(MemError::Fault(Fault::BadSyscall {
            detail: format!("string at {addr:#x} is not NUL-terminated within {max} bytes"),
        }))
    }

    fn check_range(&self, addr: u64, len: u64, write: bool) -> Result<(), MemError> {
        let end = addr.checked_add(len);
        if addr < self.lo || end.is_none_or(|e| e > self.hi) {
            return Err(MemError::Fault(Fault::OutOfBounds {
                addr,
                size: u32::try_from(len).unwrap_or(u32::MAX),
                write,
            }));
        }
        Ok(())
    }

    /// Feeds every touched page, in address order, to `f` (for state digests).
    pub fn for_each_page(&self, mut f: impl FnMut(u64, &[u8])) {
        for (l1, l2) in self.table.iter().enumerate() {
            let Some(l2) = l2 else { continue };
            for (i, &slot) in l2.iter().enumerate() {
                if slot != 0 {
                    let page_number = ((l1 as u64) << L2_BITS) | i as u64;
                    f(page_number << PAGE_BITS, &self.pages[slot as usize - 1][..]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_zero_until_written_and_round_trips_every_width() {
        let mut m = Memory::new(0x1000, 1 << 32, 1 << 20);
        assert_eq!(m.load(0x2000, 4), Ok(0));
        assert_eq!(m.bytes_in_use(), 0);
        m.store(0x2000, 8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.load(0x2000, 1), Ok(0x88));
        assert_eq!(m.load(0x2002, 2), Ok(0x5566));
        assert_eq!(m.load(0x2004, 4), Ok(0x1122_3344));
        assert_eq!(m.load(0x2000, 8), Ok(0x1122_3344_5566_7788));
        assert_eq!(m.bytes_in_use(), PAGE_SIZE as u64);
    }

    #[test]
    fn faults_outside_bounds_and_on_misalignment() {
        let mut m = Memory::new(0x4000, 0xC000_0000, 1 << 20);
        assert!(matches!(
            m.load(0x3ffc, 4),
            Err(MemError::Fault(Fault::OutOfBounds { .. }))
        ));
        assert!(matches!(
            m.store(0xC000_0000, 4, 0),
            Err(MemError::Fault(Fault::OutOfBounds { .. }))
        ));
        assert!(matches!(
            m.load(0x4001, 4),
            Err(MemError::Fault(Fault::Misaligned { .. }))
        ));
        assert!(m.write_bytes(0xBFFF_FFFF, &[1, 2]).is_err());
    }

    #[test]
    fn stops_at_the_page_limit() {
        let mut m = Memory::new(0x1000, 1 << 37, 2 * PAGE_SIZE as u64);
        m.store(0x10_0000, 4, 1).unwrap();
        m.store(0x1_0000_0000, 4, 1).unwrap();
        assert_eq!(m.store(0x1C_0000_0000, 4, 1), Err(MemError::Limit));
        // Writes to pages already held still work.
        m.store(0x10_0004, 4, 2).unwrap();
    }

    #[test]
    fn a_rollback_restores_old_pages_and_drops_new_ones() {
        let mut m = Memory::new(0x1000, 1 << 37, 1 << 20);
        m.store(0x2000, 8, 7).unwrap();
        m.checkpoint();
        m.store(0x2000, 8, 8).unwrap();
        m.store(0x2008, 8, 9).unwrap();
        m.store(0x9_0000, 4, 1).unwrap();
        assert_eq!(m.bytes_in_use(), 2 * PAGE_SIZE as u64);
        m.rollback();
        assert!(m.undo.is_none());
        assert_eq!(m.load(0x2000, 8), Ok(7));
        assert_eq!(m.load(0x2008, 8), Ok(0));
        assert_eq!(m.load(0x9_0000, 4), Ok(0));
        assert_eq!(m.bytes_in_use(), PAGE_SIZE as u64);
        // A page dropped by the rollback can be created again.
        m.store(0x9_0000, 4, 5).unwrap();
        assert_eq!(m.load(0x9_0000, 4), Ok(5));
        let mut pages = Vec::new();
        m.for_each_page(|addr, _| pages.push(addr));
        assert_eq!(pages, vec![0x2000, 0x9_0000]);
    }

    #[test]
    fn byte_copies_cross_pages() {
        let mut m = Memory::new(0x1000, 1 << 32, 1 << 20);
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        m.write_bytes(0x1ffe, &data).unwrap();
        assert_eq!(m.read_bytes(0x1ffe, data.len() as u64).unwrap(), data);
        let mut pages = Vec::new();
        m.for_each_page(|addr, _| pages.push(addr));
        assert_eq!(pages, vec![0x1000, 0x2000, 0x3000, 0x4000]);
    }
}
