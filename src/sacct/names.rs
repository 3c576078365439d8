//! Account and user names, interned: one small id per name, grouped case-insensitively.
//!
//! SLURM keeps names lower-case, but a hand-made dump or a Waldur `backend_id` may not, so a
//! name is looked up by its ASCII lower-case form and keeps the spelling of the first line
//! that brought it. Each name is stored once, with its JSON string form ready for output, so a
//! site with a million (account, user) pairs holds only its few thousand distinct names.

use crate::hash::FxMap;
use crate::json_line::push_str;

/// The id of an interned name.
pub type NameId = u32;

/// Where one interned name's strings end in the arenas (each starts where the previous
/// name's ends).
#[derive(Debug, Clone, Copy)]
struct Ends {
    /// The ASCII lower-case form: the grouping and sorting key.
    key: usize,
    /// The spelling of the first line.
    text: usize,
    /// The text as a JSON string, quotes included.
    json: usize,
}

/// Names grouped by their lower-case form, in order of first appearance.
///
/// ```
/// use waldur_usage::sacct::names::NameTable;
///
/// let mut names = NameTable::default();
/// let a = names.intern(b"HPC_A", "HPC_A");
/// assert_eq!(names.intern(b"hpc_a", "hpc_a"), a);
/// assert_eq!(names.text(a), "HPC_A");
/// assert_eq!(names.json(a), b"\"HPC_A\"");
/// ```
#[derive(Debug, Default)]
pub struct NameTable {
    /// Lower-case names of up to [`SHORT`] bytes, packed into words: hashed and compared
    /// without a pointer to chase or a `memcmp` call (nearly every SLURM name).
    short: FxMap<[u64; 3], NameId>,
    /// Longer lower-case names.
    long: FxMap<Box<[u8]>, NameId>,
    /// Per id, in order of first appearance. The strings themselves live in three arenas, so
    /// a site with hundreds of thousands of users pays no allocation per name.
    ends: Vec<Ends>,
    keys: Vec<u8>,
    texts: String,
    jsons: Vec<u8>,
    lower: Vec<u8>,
}

/// The longest name kept in [`NameTable::short`]; its last byte holds the length.
const SHORT: usize = 23;

/// `name` in ASCII lower case, packed into three words (bytes, then the length in the last
/// byte), when it is at most [`SHORT`] bytes long. Word-wise, so that nothing goes through
/// memory on the way (a byte buffer read back as words stalls the hot loop).
fn pack(name: &[u8]) -> Option<[u64; 3]> {
    if name.len() > SHORT {
        return None;
    }
    let mut words = [0u64; 3];
    for (word, chunk) in words.iter_mut().zip(name.chunks(8)) {
        *word = lower_word(match <[u8; 8]>::try_from(chunk) {
            Ok(bytes) => u64::from_le_bytes(bytes),
            Err(_) => chunk.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)),
        });
    }
    words[2] |= (name.len() as u64) << 56;
    Some(words)
}

/// The eight bytes of `w` in ASCII lower case (other bytes, non-ASCII too, unchanged).
fn lower_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // Per byte, the high bit says: at least 'A' (0x41), and at least '[' (0x5b, after 'Z').
    let from_a = low7 + (0x80 - 0x41) * ONES;
    let past_z = low7 + (0x80 - 0x5b) * ONES;
    let upper = from_a & !past_z & !w & HIGH;
    w | upper >> 2
}

/// `name` in ASCII lower case, borrowed when it already is (the common case).
fn lowered<'a>(name: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if name.iter().any(u8::is_ascii_uppercase) {
        scratch.clear();
        scratch.extend(name.iter().map(u8::to_ascii_lowercase));
        scratch
    } else {
        name
    }
}

/// `text` as a JSON string, escaped exactly as serde_json writes it.
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

impl NameTable {
    /// The id of `name` when it (or its lower-case form) is already known.
    pub fn find(&mut self, name: &[u8]) -> Option<NameId> {
        match pack(name) {
            Some(packed) => self.short.get(&packed).copied(),
            None => self.long.get(lowered(name, &mut self.lower)).copied(),
        }
    }

    /// The id of `name`, interning it with the spelling `text` (the same bytes, checked as
    /// UTF-8 by the caller) when it is new.
    pub fn intern(&mut self, name: &[u8], text: &str) -> NameId {
        match self.find(name) {
            Some(id) => id,
            None => self.insert_new(name, text),
        }
    }

    /// Intern `name`, which [`NameTable::find`] just did not find, with the spelling `text`.
    pub fn insert_new(&mut self, name: &[u8], text: &str) -> NameId {
        let id = NameId::try_from(self.ends.len()).expect("fewer than 2^32 names");
        let key = lowered(name, &mut self.lower);
        match pack(name) {
            Some(packed) => self.short.insert(packed, id),
            None => self.long.insert(key.into(), id),
        };
        self.keys.extend_from_slice(key);
        self.texts.push_str(text);
        push_str(&mut self.jsons, text);
        self.ends.push(Ends {
            key: self.keys.len(),
            text: self.texts.len(),
            json: self.jsons.len(),
        });
        id
    }

    /// Where name `id`'s strings start: where the previous name's end.
    fn starts(&self, id: NameId) -> Ends {
        match id.checked_sub(1) {
            Some(previous) => self.ends[previous as usize],
            None => Ends {
                key: 0,
                text: 0,
                json: 0,
            },
        }
    }

    fn key(&self, id: NameId) -> &[u8] {
        &self.keys[self.starts(id).key..self.ends[id as usize].key]
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no name was interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The spelling of the first line with this name.
    pub fn text(&self, id: NameId) -> &str {
        &self.texts[self.starts(id).text..self.ends[id as usize].text]
    }

    /// [`NameTable::text`] as a JSON string, quotes included.
    pub fn json(&self, id: NameId) -> &[u8] {
        &self.jsons[self.starts(id).json..self.ends[id as usize].json]
    }

    /// The rank of every id when the names are sorted by their lower-case form (byte order):
    /// `ranks()[id]` is the position of `id`.
    pub fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<NameId> = (0..self.ends.len() as NameId).collect();
        order.sort_unstable_by(|&a, &b| self.key(a).cmp(self.key(b)));
        let mut ranks = vec![0; order.len()];
        for (rank, &id) in order.iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_group_case_insensitively_and_sort_by_their_lower_case_form() {
        let mut names = NameTable::default();
        let zeta = names.intern(b"Zeta", "Zeta");
        let alpha = names.intern(b"alpha", "alpha");
        assert_eq!(names.intern(b"ZETA", "ZETA"), zeta);
        assert_eq!(names.find(b"zeta"), Some(zeta));
        assert_eq!(names.find(b"beta"), None);
        assert_eq!(names.len(), 2);
        // "alpha" < "zeta" although 'Z' < 'a' in the original spelling.
        assert_eq!(names.ranks(), vec![1, 0]);
        assert_eq!((names.text(zeta), names.text(alpha)), ("Zeta", "alpha"));
    }

    #[test]
    fn words_are_lower_cased_byte_for_byte() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'Z', b'A', b'@', b'[', 0xc3, b'z', b'a']);
            let expected = u64::from_le_bytes([
                b.to_ascii_lowercase(),
                b'z',
                b'a',
                b'@',
                b'[',
                0xc3,
                b'z',
                b'a',
            ]);
            assert_eq!(lower_word(w), expected, "byte {b:#x}");
        }
    }

    #[test]
    fn short_and_long_names_are_told_apart_by_every_byte_and_the_length() {
        let mut names = NameTable::default();
        let long = "a".repeat(SHORT + 1);
        let cases = [
            "",
            "a",
            "a\0",
            "abcdefgh",
            "abcdefghi",
            &long[..SHORT],
            &long,
        ];
        let ids: Vec<NameId> = cases
            .iter()
            .map(|c| names.intern(c.as_bytes(), c))
            .collect();
        assert_eq!(ids, (0..cases.len() as NameId).collect::<Vec<_>>());
        for (c, id) in cases.iter().zip(ids) {
            assert_eq!(
                names.find(c.to_ascii_uppercase().as_bytes()),
                Some(id),
                "{c:?}"
            );
        }
    }

    #[test]
    fn the_json_form_is_serde_jsons() {
        let mut names = NameTable::default();
        let id = names.intern("é\"\\\u{1}".as_bytes(), "é\"\\\u{1}");
        assert_eq!(names.json(id), "\"é\\\"\\\\\\u0001\"".as_bytes());
    }
}
