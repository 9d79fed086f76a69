//! Interned name tables: skills, queues and attribute keys travel as `u32` ids; a
//! [`NameTable`] maps between ids and names. Tables only grow, so an id, once
//! given, never changes meaning — a plugin may cache ids across calls.

use std::collections::HashMap;

use crate::types::NameKind;

/// One append-only table of interned names.
///
/// ```
/// use switchyard_contract::NameTable;
/// let mut skills = NameTable::default();
/// let billing = skills.intern("billing");
/// assert_eq!(skills.intern("billing"), billing);
/// assert_eq!(skills.name(billing), Some("billing"));
/// assert_eq!(skills.id("claims"), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct NameTable {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Total bytes of the names, so a host can bound the table in O(1).
    bytes: usize,
}

impl NameTable {
    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.bytes += name.len();
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if interned.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of `id`, if known.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    /// Names from id `from` on (what the `names` host import returns).
    pub fn tail(&self, from: u32) -> &[String] {
        self.names.get(from as usize..).unwrap_or(&[])
    }

    /// Append names learned from the host (ids continue from `len()`).
    pub fn extend<I: IntoIterator<Item = String>>(&mut self, names: I) {
        for name in names {
            let id = self.names.len() as u32;
            self.bytes += name.len();
            self.ids.entry(name.clone()).or_insert(id);
            self.names.push(name);
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Total bytes of the names (what a host bounds; tables only grow).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The three name tables a host keeps and a plugin reads.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Skill names.
    pub skills: NameTable,
    /// Queue names.
    pub queues: NameTable,
    /// Attribute keys.
    pub attributes: NameTable,
}

impl Catalog {
    /// The table of `kind`.
    pub fn table(&self, kind: NameKind) -> &NameTable {
        match kind {
            NameKind::Skill => &self.skills,
            NameKind::Queue => &self.queues,
            NameKind::Attribute => &self.attributes,
        }
    }

    /// The table of `kind`, mutable.
    pub fn table_mut(&mut self, kind: NameKind) -> &mut NameTable {
        match kind {
            NameKind::Skill => &mut self.skills,
            NameKind::Queue => &mut self.queues,
            NameKind::Attribute => &mut self.attributes,
        }
    }
}
