//! Is an executable static? An `LD_PRELOAD` library is never loaded into a statically
//! linked program, so its sockets silently stay TCP; with `YASMIN_PRELOAD_LOG=1` an
//! `exec` of one says so. Pure: parses the start of the file.

/// `Some(true)`: an ELF executable with no program interpreter (`PT_INTERP`), i.e.
/// static; `Some(false)`: dynamic; `None`: not ELF, or its program headers are not in
/// `head` (the first bytes of the file).
pub fn is_static(head: &[u8]) -> Option<bool> {
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match head.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let uint = |at: usize, n: usize| -> Option<u64> {
        let b = head.get(at..at + n)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if little { b[n - 1 - i] } else { b[i] };
            v = v << 8 | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (uint(0x20, 8)?, uint(0x36, 2)?, uint(0x38, 2)?)
    } else {
        (uint(0x1c, 4)?, uint(0x2a, 2)?, uint(0x2c, 2)?)
    };
    const PT_INTERP: u64 = 3;
    for i in 0..phnum {
        let at = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if uint(at, 4)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian 64-bit ELF header with `types` as its program headers.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut h = vec![0u8; 64 + 56 * types.len()];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        h[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, t) in types.iter().enumerate() {
            h[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        h
    }

    #[test]
    fn static_and_dynamic() {
        assert_eq!(is_static(&elf64(&[6, 3, 1, 1])), Some(false));
        assert_eq!(is_static(&elf64(&[1, 1, 4])), Some(true));
        assert_eq!(is_static(&elf64(&[])), Some(true));
    }

    #[test]
    fn not_elf_or_cut_short() {
        assert_eq!(is_static(b"#!/bin/sh\n"), None);
        assert_eq!(is_static(b""), None);
        let h = elf64(&[1, 3]);
        assert_eq!(is_static(&h[..64 + 56]), None, "headers past what was read");
        let mut bad = elf64(&[3]);
        bad[4] = 9;
        assert_eq!(is_static(&bad), None);
    }

    #[test]
    fn this_test_binary_is_dynamic() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(is_static(&exe[..exe.len().min(65536)]), Some(false));
    }
}
