//! Account and user names, interned: one small id per name, grouped case-insensitively.
//!
//! SLURM keeps names lower-case, but a hand-made dump or a Waldur `backend_id` may not, so a
//! name is looked up by its ASCII lower-case form and keeps the spelling of the first line
//! that brought it. Each name is stored once, with its JSON string form ready for output, so a
//! site with a million (account, user) pairs holds only its few thousand distinct names.

use super::hash::FxMap;

/// The id of an interned name.
pub type NameId = u32;

/// One interned name.
#[derive(Debug)]
struct Entry {
    /// The ASCII lower-case form: the grouping and sorting key.
    key: Box<[u8]>,
    /// The spelling of the first line.
    text: Box<str>,
    /// `text` as a JSON string, quotes included.
    json: Box<str>,
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
/// assert_eq!(names.json(a), "\"HPC_A\"");
/// ```
#[derive(Debug, Default)]
pub struct NameTable {
    /// Lower-case names of up to [`SHORT`] bytes, packed into words: hashed and compared
    /// without a pointer to chase or a `memcmp` call (nearly every SLURM name).
    short: FxMap<[u64; 3], NameId>,
    /// Longer lower-case names.
    long: FxMap<Box<[u8]>, NameId>,
    entries: Vec<Entry>,
    lower: Vec<u8>,
}

/// The longest name kept in [`NameTable::short`]; its last byte holds the length.
const SHORT: usize = 23;

/// `key` packed into three words (bytes, then the length in the last byte).
fn pack(key: &[u8]) -> Option<[u64; 3]> {
    if key.len() > SHORT {
        return None;
    }
    let mut bytes = [0u8; 24];
    bytes[..key.len()].copy_from_slice(key);
    bytes[SHORT] = key.len() as u8;
    let word =
        |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    Some([word(0), word(1), word(2)])
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
        let key = lowered(name, &mut self.lower);
        match pack(key) {
            Some(packed) => self.short.get(&packed).copied(),
            None => self.long.get(key).copied(),
        }
    }

    /// The id of `name`, interning it with the spelling `text` (the same bytes, checked as
    /// UTF-8 by the caller) when it is new.
    pub fn intern(&mut self, name: &[u8], text: &str) -> NameId {
        if let Some(id) = self.find(name) {
            return id;
        }
        let id = NameId::try_from(self.entries.len()).expect("fewer than 2^32 names");
        let key: Box<[u8]> = lowered(name, &mut self.lower).into();
        match pack(&key) {
            Some(packed) => self.short.insert(packed, id),
            None => self.long.insert(key.clone(), id),
        };
        self.entries.push(Entry {
            key,
            text: text.into(),
            json: json_string(text).into(),
        });
        id
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no name was interned.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The spelling of the first line with this name.
    pub fn text(&self, id: NameId) -> &str {
        &self.entries[id as usize].text
    }

    /// [`NameTable::text`] as a JSON string.
    pub fn json(&self, id: NameId) -> &str {
        &self.entries[id as usize].json
    }

    /// The rank of every id when the names are sorted by their lower-case form (byte order):
    /// `ranks()[id]` is the position of `id`.
    pub fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<NameId> = (0..self.entries.len() as NameId).collect();
        order.sort_unstable_by(|&a, &b| {
            self.entries[a as usize]
                .key
                .cmp(&self.entries[b as usize].key)
        });
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
        assert_eq!(names.json(id), "\"é\\\"\\\\\\u0001\"");
    }
}
