//! The reference data in force, shared by every service: the catalogue sync puts a new
//! version in force; each unit of work takes the current one when it starts.
use std::sync::{Arc, RwLock};

use hub_core::Reference;

/// The reference data in force. The catalogue sync replaces it with one that holds the new
/// matter versions; every unit of work takes the current one when it starts.
#[derive(Clone)]
pub struct CurrentReference(Arc<RwLock<Arc<Reference>>>);

impl CurrentReference {
    pub fn new(reference: Reference) -> CurrentReference {
        CurrentReference(Arc::new(RwLock::new(Arc::new(reference))))
    }

    pub fn get(&self) -> Arc<Reference> {
        self.0.read().expect("reference lock").clone()
    }

    pub(crate) fn replace(&self, reference: Reference) {
        *self.0.write().expect("reference lock") = Arc::new(reference);
    }
}
