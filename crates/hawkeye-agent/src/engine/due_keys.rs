//! The state keys lent whole to a tick's state read: copies of the due
//! monitors' keys, kept while the same monitors are due (`read.rs` lends
//! them; a change of the monitors' list forgets them).

/// Copies of the state keys of the monitors due at a tick, in the order
/// of the state read, kept while the same monitors are due (at every tick
/// when they share an interval): the read then takes them whole instead
/// of a move out of every monitor and back. Copies are made once the same
/// monitors were due twice in a row; until then keys are moved.
#[derive(Default)]
pub(super) struct DueKeys {
    /// The copies (with the retired keys appended while lent).
    pub(super) keys: Vec<String>,
    /// The copies' length: the keys of the monitors of `of`.
    pub(super) len: usize,
    /// The monitors (indexes) the copies are of.
    pub(super) of: Vec<usize>,
    /// The copies still name those monitors' keys: cleared by any change
    /// of the monitors' list ([`DueKeys::forget`]).
    pub(super) valid: bool,
    /// The monitors due at the last tick whose keys were moved.
    pub(super) last_due: Vec<usize>,
    /// The keys lent now were moved out of their monitors.
    pub(super) moved: bool,
}

impl DueKeys {
    /// The monitors' list changed (reload, groups added or removed): an
    /// index may now be another monitor's.
    pub(super) fn forget(&mut self) {
        self.valid = false;
        self.last_due.clear();
        self.keys.clear();
        self.len = 0;
    }

    pub(super) fn fits(&self, due: &[usize]) -> bool {
        self.valid && self.of == due
    }
}
