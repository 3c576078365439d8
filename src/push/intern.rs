//! Names interned once per period.

use std::collections::HashMap;

use crate::hash::Fx;

/// An interned name's number within its period.
pub type NameId = u32;

/// Names interned once per period: each distinct name is stored once and known by its id.
#[derive(Debug, Default, Clone)]
pub struct Names {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, NameId, Fx>,
}

impl Names {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = NameId::try_from(self.names.len()).expect("fewer than 2^32 names a period");
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        id
    }

    /// The id of `name`, if interned.
    pub fn find(&self, name: &str) -> Option<NameId> {
        self.index.get(name).copied()
    }

    /// The name of `id`.
    pub fn get(&self, id: NameId) -> &str {
        &self.names[id as usize]
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}
