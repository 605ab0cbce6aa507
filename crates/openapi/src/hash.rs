//! Stable, dependency-free content hashes (FNV-1a) for document versions and storage hashes.

const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV128_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV128_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// 64-bit FNV-1a.
pub fn fnv1a_64(data: &[u8]) -> u64 {
    data.iter().fold(FNV64_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV64_PRIME)
    })
}

/// 128-bit FNV-1a as 32 upper-case hex digits (kube uses SHA-512; clients only compare it).
pub fn content_hash(data: &[u8]) -> String {
    let h = data.iter().fold(FNV128_OFFSET, |h, b| {
        (h ^ u128::from(*b)).wrapping_mul(FNV128_PRIME)
    });
    format!("{h:032X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of FNV-1a.
        let cases: &[(&[u8], u64)] = &[
            (b"", 0xcbf29ce484222325),
            (b"a", 0xaf63dc4c8601ec8c),
            (b"foobar", 0x85944171f73967e8),
        ];
        for (input, want) in cases {
            assert_eq!(fnv1a_64(input), *want);
        }
        assert_eq!(content_hash(b""), "6C62272E07BB014262B821756295C58D");
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
