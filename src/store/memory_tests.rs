use super::*;
use crate::store::conformance::conformance;

// Every store's behaviour (the SQLite store runs the same checks).
conformance!(|cfg| Box::new(MemoryStore::new(cfg).unwrap()), |cfg| {
    let store = MemoryStore::new(cfg).unwrap();
    (Box::new(store.clone()), Arc::new(store))
});

#[test]
fn settings_are_checked() {
    let bad = StoreConfig {
        account_id: "1".into(),
        ..StoreConfig::default()
    };
    assert!(MemoryStore::new(bad).unwrap_err().contains("account_id"));
}
