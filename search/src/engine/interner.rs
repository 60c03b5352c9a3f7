//! One search's shared texts: tactics recur across nodes (the policy proposes `norm_num` at
//! every state) and Lean's failure messages across siblings, so each distinct text is held
//! once and every node or failed attempt that carries it holds an `Arc`.

use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Interner {
    texts: HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `text`, made on first sight.
    pub fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.texts.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_allocation_and_different_ones_do_not() {
        let mut interner = Interner::default();
        let a = interner.intern("linarith failed");
        let b = interner.intern(&String::from("linarith failed"));
        let c = interner.intern("omega");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((&*a, &*c), ("linarith failed", "omega"));
    }
}
